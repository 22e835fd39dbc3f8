"""Planted links (docs/privileges.md "Files wattmeter writes"): another user
who can write the recording folder, or a sticky world-writable folder such as
/tmp, plants symlinks where wattmeter (often root) will write. Nothing is
ever written through them: the victim file keeps its bytes and its mode, and
the run still records, or refuses with a message that names the link.

The links are real symlinks; "another user's" link is one lchown'ed to
nobody (65534), which needs root (skipped otherwise). The machine's
fs.protected_symlinks may be 0 (it is in many containers): the rule holds
either way, because wattmeter checks it itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FAST, WATTMETER, py_cmd, report_json, run_wm, wait_for

VICTIM_TEXT = "root:$6$secret:19000:0:99999:7:::\n"
NOBODY = 65534


def make_victim(tmp_path: Path) -> Path:
    """A 0600 root file outside every folder wattmeter writes, as /etc/shadow."""
    v = tmp_path / "victim"
    v.write_text(VICTIM_TEXT)
    v.chmod(0o600)
    return v


def assert_untouched(victim: Path) -> None:
    assert victim.read_text() == VICTIM_TEXT, "the victim was written through a planted link"
    assert victim.stat().st_mode & 0o777 == 0o600


def plant(folder: Path, names, target: Path, owner: int | None = None) -> None:
    for n in names:
        link = folder / n
        link.symlink_to(target)
        if owner is not None:
            os.lchown(link, owner, owner)


# Names a writer could use for meta.json's temp file: the old fixed one,
# meta.json itself, and those other tools use.
META_NAMES = ["meta.json.tmp", "meta.json", ".meta.json.tmp", "meta.json~", "meta.json.new", ".meta.json.swp"]


def test_links_planted_in_the_recording_folder_are_not_written_through(tmp_path):
    """meta.json.tmp -> victim (the reported attack) and its cousins: the run
    records normally, meta.json is our own new file, the victim is intact."""
    victim = make_victim(tmp_path)
    rec = tmp_path / "rec"
    rec.mkdir()
    plant(rec, META_NAMES, victim)
    p = run_wm(["run", "-o", str(rec), *FAST, "--", *py_cmd("import time; time.sleep(0.3)")])
    assert p.returncode == 0, p.stderr
    assert_untouched(victim)
    assert (rec / "meta.json").is_file() and not (rec / "meta.json").is_symlink()
    meta = json.loads((rec / "meta.json").read_text())
    assert meta["schema"] == "wattmeter.recording" and meta["complete"] is True
    s = report_json(rec)
    assert s["complete"] is True and s["samples"] >= 3
    # no temp file of ours is left; the other planted links are left alone
    left = sorted(x.name for x in rec.iterdir())
    assert left == sorted(set(META_NAMES) - {"meta.json"} | {"meta.json", "samples.jsonl"})


def test_a_planted_samples_link_is_refused_clearly(tmp_path):
    """samples.jsonl -> victim: not followed; the command still runs (its
    exit status is kept) and the summary says why nothing was recorded."""
    victim = make_victim(tmp_path)
    rec = tmp_path / "rec"
    rec.mkdir()
    plant(rec, ["samples.jsonl"], victim)
    p = run_wm(["run", "-o", str(rec), *FAST, "--", *py_cmd("import sys; sys.exit(3)")])
    assert p.returncode == 3, p.stderr
    assert "samples.jsonl is a symbolic link: not followed" in p.stderr
    assert "NOT RECORD" in p.stderr
    assert_untouched(victim)


@pytest.fixture
def sticky(tmp_path):
    """A sticky world-writable folder (as /tmp), owned by root."""
    if os.geteuid() != 0:
        pytest.skip("a link owned by another user needs root (lchown)")
    d = tmp_path / "tmp"
    d.mkdir()
    d.chmod(0o1777)
    return d


def test_another_users_link_in_a_sticky_folder_is_not_followed_as_o(sticky, tmp_path):
    """-o /tmp/x where another user made x a link to a folder of theirs (or
    of root's): refused by the rule of fs.protected_symlinks; our own link in
    the same folder is followed."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    plant(sticky, ["theirs"], target, owner=NOBODY)
    p = run_wm(["run", "-o", str(sticky / "theirs"), *FAST, "--", "true"])
    assert p.returncode == 0
    assert "protected_symlinks" in p.stderr and "uid 65534" in p.stderr, p.stderr
    assert list(target.iterdir()) == []

    plant(sticky, ["mine"], target)
    p = run_wm(["run", "-o", str(sticky / "mine"), *FAST, "--", "true"])
    assert p.returncode == 0, p.stderr
    assert (target / "meta.json").is_file()


def test_a_planted_wattmeter_runs_link_is_not_followed(sticky, tmp_path):
    """Run without -o from /tmp, where another user planted
    ./wattmeter-runs -> a folder of their choice: nothing is created there."""
    target = tmp_path / "chosen"
    target.mkdir()
    plant(sticky, ["wattmeter-runs"], target, owner=NOBODY)
    p = subprocess.run([WATTMETER, "run", *FAST, "--", "true"], cwd=sticky, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0
    assert "protected_symlinks" in p.stderr, p.stderr
    assert list(target.iterdir()) == []


def test_summary_json_never_writes_through_another_users_link(sticky, tmp_path):
    """--summary-json /tmp/s.json planted as a link to the victim by another
    user: refused before the command runs (exit 125: wattmeter failed), victim intact."""
    victim = make_victim(tmp_path)
    plant(sticky, ["s.json"], victim, owner=NOBODY)
    marker = tmp_path / "ran"
    p = run_wm(["run", "-o", str(tmp_path / "rec"), "--summary-json", str(sticky / "s.json"), *FAST, "--",
                *py_cmd(f"open({str(marker)!r}, 'w').close()")])
    assert p.returncode == 125
    assert "--summary-json" in p.stderr and "protected_symlinks" in p.stderr, p.stderr
    assert not marker.exists(), "the command ran although the summary path was refused"
    assert_untouched(victim)


def test_summary_json_replaces_a_file_and_still_writes_to_stdout(tmp_path):
    """An existing summary file (here a hard link of the victim, as a planted
    hard link would be) is replaced by rename, not written through; the
    path's mode is kept; /dev/stdout still works (written in place)."""
    victim = make_victim(tmp_path)
    out = tmp_path / "s.json"
    os.link(victim, out)
    p = run_wm(["run", "-o", str(tmp_path / "rec"), "--summary-json", str(out), *FAST, "--", "true"])
    assert p.returncode == 0, p.stderr
    assert_untouched(victim)
    assert json.loads(out.read_text())["complete"] is True
    assert out.stat().st_mode & 0o777 == 0o600 and out.stat().st_nlink == 1
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []

    p = run_wm(["run", "-o", str(tmp_path / "rec2"), "--summary-json", "/dev/stdout", *FAST, "--", "true"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["complete"] is True


def test_report_html_never_writes_through_another_users_link(sticky, tmp_path):
    rec = tmp_path / "rec"
    assert run_wm(["run", "-o", str(rec), *FAST, "--", "true"]).returncode == 0
    victim = make_victim(tmp_path)
    plant(sticky, ["r.html"], victim, owner=NOBODY)
    p = run_wm(["report", str(rec), "--html", str(sticky / "r.html")])
    assert p.returncode == 1 and "protected_symlinks" in p.stderr, p.stderr
    assert_untouched(victim)
    p = run_wm(["report", str(rec), "--html", str(tmp_path / "r.html")])
    assert p.returncode == 0, p.stderr
    assert "<html" in (tmp_path / "r.html").read_text().lower()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_record_shares_the_rule(tmp_path):
    """`serve --record DIR` writes with the same code: a planted meta.json.tmp
    is not followed, and its recording completes at SIGTERM."""
    victim = make_victim(tmp_path)
    rec = tmp_path / "rec"
    rec.mkdir()
    plant(rec, META_NAMES, victim)
    p = subprocess.Popen([WATTMETER, "serve", "--listen", f"127.0.0.1:{free_port()}", "--period", "0.05",
                          "--record", str(rec)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (rec / "samples.jsonl").exists() and
                        (rec / "samples.jsonl").stat().st_size > 0, timeout=20), p.stderr
        time.sleep(0.3)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert_untouched(victim)
    assert not (rec / "meta.json").is_symlink()
    assert report_json(rec)["complete"] is True


def test_python_meter_in_a_sticky_folder_does_not_follow_a_planted_wattmeter_runs(sticky, tmp_path,
                                                                                  monkeypatch):
    """Meter() with no folder, from /tmp, where another user planted
    ./wattmeter-runs: measured unrecorded with a warning that says why;
    nothing is created where the link points."""
    import warnings

    import wattmeter

    target = tmp_path / "chosen"
    target.mkdir()
    plant(sticky, ["wattmeter-runs"], target, owner=NOBODY)
    monkeypatch.chdir(sticky)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = wattmeter.Meter(period=0.05).start()
        m.stop()
    assert m.recorded is False
    assert any("protected_symlinks" in str(x.message) for x in w), [str(x.message) for x in w]
    assert list(target.iterdir()) == []
