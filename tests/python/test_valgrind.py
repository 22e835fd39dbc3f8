"""The CLI's main paths under valgrind: no invalid reads or writes, no use of
uninitialised values, nothing definitely lost."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import WATTMETER

VALGRIND = shutil.which("valgrind")
pytestmark = pytest.mark.skipif(not VALGRIND, reason="valgrind not installed")

BAD = re.compile(r"Invalid (read|write|free)|uninitialised|Mismatched free|definitely lost: [1-9]"
                 r"|Syscall param .* points to unaddressable")


def vg(args, logdir, name, timeout=120):
    logs = logdir / f"{name}.%p.log"
    p = subprocess.run([VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite",
                        "--error-exitcode=99", "--track-fds=no", f"--log-file={logs}",
                        WATTMETER, *args],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    texts = [f.read_text() for f in sorted(logdir.glob(f"{name}.*.log"))]
    assert texts, "valgrind wrote no log"
    for t in texts:
        bad = BAD.search(t)
        assert not bad, f"valgrind {' '.join(args)}: {bad.group(0)}\n{t[-6000:]}"
    main = [t for t in texts if "ERROR SUMMARY" in t and "HEAP SUMMARY" in t]
    assert main, "no valgrind summary"
    for t in main:
        assert "ERROR SUMMARY: 0 errors" in t, t[-6000:]
        assert "definitely lost: 0" in t or "no leaks are possible" in t, t[-6000:]
    assert p.returncode != 99, p.stderr
    return p


@pytest.fixture(scope="module")
def vg_recording(tmp_path_factory):
    """A recording made under valgrind on a fake RAPL tree (its process and
    memory tiers run several times)."""
    if not WATTMETER:
        pytest.skip("wattmeter CLI not installed")
    from conftest import FakeRapl

    d = tmp_path_factory.mktemp("vg")
    fake = FakeRapl(str(d / "sys"), layout="intel-2pkg").start(interval_s=0.005)
    try:
        out = d / "rec"
        p = vg(["run", "--sysfs-root", fake.root, "-o", str(out), "--period", "0.05",
                "--proc-period", "0.1", "--mem-period", "0.2", "--", "sleep", "0.6"], d, "run")
    finally:
        fake.stop()
    assert p.returncode == 0, p.stderr
    return d, out, fake


def test_run_on_a_fake_tree(vg_recording):
    d, out, _ = vg_recording
    assert (out / "meta.json").exists()


def test_run_true_modeled(tmp_path):
    empty = tmp_path / "sys-empty"
    empty.mkdir()
    p = vg(["run", "--sysfs-root", str(empty), "-o", str(tmp_path / "rec"), "--", "true"], tmp_path, "runtrue")
    assert p.returncode == 0, p.stderr


def test_run_command_not_found_and_existing_output(vg_recording, tmp_path):
    _, out, _ = vg_recording
    assert vg(["run", "-o", str(tmp_path / "x"), "--", "no-such-command-wm"], tmp_path, "nf").returncode == 127
    # the folder holds a recording: the command runs unrecorded (the fallback path, leak-checked too)
    assert vg(["run", "-o", str(out), "--", "true"], tmp_path, "exists").returncode == 0


@pytest.mark.parametrize("args", [["report"], ["report", "--json"], ["report", "--columns"]],
                         ids=["report", "report-json", "report-columns"])
def test_report(vg_recording, tmp_path, args):
    _, out, _ = vg_recording
    p = vg([*args, str(out)], tmp_path, "report")
    assert p.returncode == 0, p.stderr


def test_report_of_missing_and_truncated_recordings(vg_recording, tmp_path):
    _, out, _ = vg_recording
    assert vg(["report", str(tmp_path / "missing")], tmp_path, "missing").returncode not in (0, 99)
    cut = tmp_path / "cut"
    shutil.copytree(out, cut)
    data = (cut / "samples.jsonl").read_text()
    (cut / "samples.jsonl").write_text(data[: len(data) - 40])
    assert vg(["report", "--json", str(cut)], tmp_path, "cut").returncode == 0


# A client under the run sends requests through the control socket (begin,
# tokens, end; one left open): the ledger thread, the control socket's
# request ops and, below, the requests reader run under valgrind.
REQUESTS_CLIENT = (
    "import json, os, socket, time\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "def send(o):\n"
    "    o.update(v=1, t_ns=time.monotonic_ns()); s.sendto(json.dumps(o).encode(), os.environ['WATTMETER_CONTROL'])\n"
    "for i in range(3):\n"
    "    send({'op': 'request_begin', 'key': f'k{i}', 'attrs': {'model': 'm', 'path': '/v1/chat/completions'}})\n"
    "    for _ in range(4):\n"
    "        time.sleep(0.03); send({'op': 'request_tokens', 'key': f'k{i}', 'n': 2})\n"
    "    send({'op': 'request_end', 'key': f'k{i}', 'result': {'prompt_tokens': 5, 'status': 200}})\n"
    "    time.sleep(0.1)\n"
    "send({'op': 'request_begin', 'key': 'open', 'attrs': {}})\n"
    "send({'op': 'request_end', 'key': 'nope'})\n"
    "time.sleep(0.2)\n")


def test_run_and_report_with_requests(vg_recording, tmp_path):
    import sys

    _, _, fake = vg_recording
    out = tmp_path / "req"
    p = vg(["run", "--sysfs-root", fake.root, "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
            "--", sys.executable, "-c", REQUESTS_CLIENT], tmp_path, "reqrun")
    assert p.returncode == 0, p.stderr
    assert (out / "requests.jsonl").read_text().count('"event":"request"') == 4
    for name, args in (("reqtext", []), ("reqjson", ["--json"]), ("reqhtml", ["--html", str(tmp_path / "r.html")])):
        p = vg(["report", *args, str(out)], tmp_path, name)
        assert p.returncode == 0, p.stderr
    assert "Energy per request" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_sensors(vg_recording, tmp_path, json_flag):
    _, _, fake = vg_recording
    assert vg(["sensors", *json_flag], tmp_path, "sensors").returncode == 0
    assert vg(["sensors", "--sysfs-root", fake.root, *json_flag], tmp_path, "sensorsfake").returncode == 0
