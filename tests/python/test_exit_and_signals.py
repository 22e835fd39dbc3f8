"""`wattmeter run` exits as its command does, forwards SIGTERM/SIGINT to it,
runs it even when the recording cannot be made (unrecorded, with a warning), and leaves a
readable recording even when it is itself killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import pytest

import wattmeter
from conftest import FAST, PY, WATTMETER, kill_quietly, read_meta, read_sample_lines, report_json, run_wm, wait_for


# ---- exit codes -------------------------------------------------------------------


def test_exit_code_is_passed_through(tmp_path):
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "-o", str(out), "--", "sh", "-c", "exit 3"])
    assert p.returncode == 3
    assert read_meta(out)["exit_status"] == 3
    assert report_json(out)["exit_status"] == 3


def test_command_killed_by_signal_gives_128_plus_n(tmp_path):
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "-o", str(out), "--", PY, "-c",
                "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert p.returncode == 128 + signal.SIGKILL == 137
    meta = read_meta(out)
    assert meta["exit_status"] == 137 and meta["complete"] is True


def test_command_not_found_is_127_and_creates_nothing(tmp_path):
    out = tmp_path / "rec"
    p = run_wm(["run", "-o", str(out), "--", "no-such-command-wm-test"])
    assert p.returncode == 127
    assert "no-such-command-wm-test" in p.stderr and "not found" in p.stderr
    assert not out.exists()


def test_command_not_executable_is_126(tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    out = tmp_path / "rec"
    p = run_wm(["run", "-o", str(out), "--", str(script)])
    assert p.returncode == 126
    assert str(script) in p.stderr
    assert not out.exists()


# ---- signals --------------------------------------------------------------------

TRAP = textwrap.dedent("""
    import signal, sys, time
    marker = sys.argv[1]
    def on_signal(signum, frame):
        with open(marker, "w") as f:
            f.write(signal.Signals(signum).name)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    time.sleep(30)
    sys.exit(7)   # not reached when the signal is forwarded
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_wattmeter_is_forwarded_to_the_command(tmp_path, sig):
    script = tmp_path / "trap.py"
    script.write_text(TRAP)
    marker = tmp_path / "marker"
    out = tmp_path / "rec"
    p = subprocess.Popen([WATTMETER, "run", "-o", str(out), *FAST, "--", PY, str(script), str(marker)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"  # the handler is installed
        time.sleep(0.3)
        p.send_signal(sig)
        stdout, stderr = p.communicate(timeout=20)
    finally:
        kill_quietly(p.pid)
    assert p.returncode == 0, stderr
    assert marker.read_text() == sig.name
    meta = read_meta(out)
    assert meta["complete"] is True and meta["exit_status"] == 0
    s = report_json(out)
    assert s["complete"] is True and s["truncated"] is False and s["duration_s"] > 0.2


def test_untrapped_sigterm_kills_the_command_and_gives_143(tmp_path):
    out = tmp_path / "rec"
    p = subprocess.Popen([WATTMETER, "run", "-q", "-o", str(out), *FAST, "--", "sleep", "30"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: (out / "samples.jsonl").exists())
        time.sleep(0.3)
        p.terminate()
        p.communicate(timeout=20)
    finally:
        kill_quietly(p.pid)
    assert p.returncode == 128 + signal.SIGTERM
    assert read_meta(out)["exit_status"] == 143 and read_meta(out)["complete"] is True


# ---- output folder --------------------------------------------------------------


# A measurement problem never stops the command (issue 7): if the recording
# cannot be made, the command runs, measured but unrecorded, with a warning
# that names the folder and the reason, and wattmeter exits as the command did.


def test_output_under_a_regular_file_runs_the_command_unrecorded(tmp_path):
    (tmp_path / "file").write_text("not a folder\n")
    out = tmp_path / "file" / "sub"
    marker = tmp_path / "ran"
    p = run_wm(["run", "-o", str(out), "--", "sh", "-c", f"touch {marker}; exit 5"])
    assert p.returncode == 5, p.stderr
    assert marker.exists(), "the command did not run"
    assert "NOT RECORDING" in p.stderr and str(out) in p.stderr
    assert "NOT RECORDED" in p.stderr  # the summary says so too


def test_output_holding_a_recording_is_left_intact_and_the_command_runs(tmp_path):
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), "--", "true"]).returncode == 0
    before = {f: (out / f).read_bytes() for f in ("meta.json", "samples.jsonl")}
    marker = tmp_path / "ran"
    p = run_wm(["run", "-o", str(out), "--", "touch", str(marker)])
    assert p.returncode == 0, p.stderr
    assert str(out) in p.stderr and "already holds a recording" in p.stderr
    assert marker.exists()
    assert {f: (out / f).read_bytes() for f in before} == before


def test_unwritable_output_folder_runs_the_command_unrecorded(tmp_path, world_dir):
    """As an unprivileged user, a folder that cannot be created: named, with
    the reason, and the command runs anyway."""
    parent = world_dir / "root-owned"
    parent.mkdir(mode=0o755)
    out = parent / "sub"
    writable = world_dir / "writable"
    writable.mkdir(mode=0o777)
    writable.chmod(0o777)
    marker = writable / "ran"
    p = subprocess.run([str(world_dir / "wattmeter"), "run", "-o", str(out), "--", "touch", str(marker)],
                       capture_output=True, text=True, user="nobody", cwd=str(world_dir), timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert str(out) in p.stderr and "NOT RECORDING" in p.stderr
    assert "Permission denied" in p.stderr or "permission" in p.stderr.lower()
    assert marker.exists()


# ---- SIGKILL mid-run ------------------------------------------------------------


def start_and_sigkill(out, seconds: float = 2.0):
    # a short period, so the cut comes after many complete lines
    p = subprocess.Popen([WATTMETER, "run", "-q", "-o", str(out), "--period", "0.1", "--", "sleep", "30"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: (out / "samples.jsonl").exists())
        time.sleep(seconds)
        meta = read_meta(out)
    finally:
        p.kill()
        p.wait()
    for pid in meta["pids"]:  # the orphaned sleep
        kill_quietly(pid)
    return meta


def test_sigkilled_run_leaves_a_readable_recording(tmp_path):
    out = tmp_path / "rec"
    start_and_sigkill(out)
    meta = read_meta(out)
    assert meta["complete"] is False
    assert "end_utc" not in meta

    text = run_wm(["report", str(out)])
    assert text.returncode == 0, text.stderr
    s = report_json(out)
    assert s["complete"] is False
    assert s["duration_s"] > 1.0
    assert s["energy_j"]["cpu"] > 0
    r = wattmeter.load(str(out))
    assert r.complete is False and r.duration_s == pytest.approx(s["duration_s"])
    assert r.summary == s


def test_sigkilled_run_with_a_cut_last_line_is_read_as_truncated(tmp_path):
    out = tmp_path / "rec"
    start_and_sigkill(out)
    lines = read_sample_lines(out)
    assert len(lines) > 5
    last = lines[-1]
    cut = "\n".join(lines[:-1]) + "\n" + last[: len(last) // 2]
    (out / "samples.jsonl").write_text(cut)
    whole_before = json.loads(lines[-2])

    text = run_wm(["report", str(out)])
    assert text.returncode == 0, text.stderr
    s = report_json(out)
    assert s["truncated"] is True and s["complete"] is False
    assert s["duration_s"] > 1.0
    # the totals are those of the last complete line
    assert s["energy_j"]["cpu"] == pytest.approx(whole_before["energy_j"]["cpu"], rel=1e-6)
    r = wattmeter.load(str(out))
    assert r.truncated is True and r.complete is False
    assert r.summary == s


def test_a_malformed_line_in_the_middle_is_an_error_naming_it(tmp_path):
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), *FAST, "--", "sleep", "0.5"]).returncode == 0
    lines = read_sample_lines(out)
    assert len(lines) >= 5
    lines[2] = lines[2][: len(lines[2]) // 2]
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n")
    p = run_wm(["report", str(out), "--json"])
    assert p.returncode != 0
    assert "samples.jsonl line 3" in p.stderr
    with pytest.raises(OSError):
        wattmeter.load(str(out))
