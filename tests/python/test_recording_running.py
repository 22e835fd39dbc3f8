"""A recording still being written is "still running (pid N)", not killed
(docs/recording.md "Reading a recording while it is written").

The writer holds an open-file-description lock on samples.jsonl for as long
as it records; `wattmeter report`, `report --json` and Python's
wattmeter.load() look at it. The truths: the pid of the real `wattmeter run`
process we started (or os.getpid() for an in-process Meter), and whether that
process is alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import wattmeter

from conftest import WATTMETER, kill_quietly, report_json, run_wm, wait_for


def start_run(out, seconds: float = 30.0) -> subprocess.Popen:
    p = subprocess.Popen([WATTMETER, "run", "-o", str(out), "--period", "0.05", "--", "sleep", str(seconds)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = out / "samples.jsonl"
    assert wait_for(lambda: samples.exists() and samples.read_bytes().count(b"\n") >= 3, timeout=20)
    return p


def test_report_on_a_live_run_says_still_running_with_its_pid(tmp_path):
    out = tmp_path / "live"
    p = start_run(out, seconds=2.0)
    try:
        t = run_wm(["report", str(out)])
        assert t.returncode == 0, t.stderr
        assert f"still running (pid {p.pid})" in t.stdout, t.stdout
        assert "killed" not in t.stdout
        s = report_json(out)
        assert s["running_pid"] == p.pid and s["complete"] is False

        r = wattmeter.load(out)
        assert r.running_pid == p.pid and r.complete is False
        assert f"still running (pid {p.pid})" in str(r.summary)
        assert p.poll() is None  # it was alive all along
    finally:
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    # ended: complete, nobody running
    s = report_json(out)
    assert s["complete"] is True and s["running_pid"] is None
    assert "still running" not in run_wm(["report", str(out)]).stdout
    assert wattmeter.load(out).running_pid is None


def test_a_killed_run_is_killed_even_while_its_command_lives_on(tmp_path):
    """SIGKILL the meter: its lock goes with it, so the recording reads as
    killed, although the measured `sleep` it forked is still running (the
    lock fd is O_CLOEXEC: the command never held it)."""
    out = tmp_path / "killed"
    p = start_run(out)
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        child = int(f.read().split()[0])  # the `sleep` it forked
    try:
        assert report_json(out)["running_pid"] == p.pid
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        os.kill(child, 0)  # the command is alive
        s = report_json(out)
        assert s["running_pid"] is None and s["complete"] is False
        t = run_wm(["report", str(out)]).stdout
        assert "recording incomplete: the run was killed" in t and "still running" not in t
    finally:
        kill_quietly(child)
        p.stderr.close()


def test_an_in_process_meter_is_running_until_stopped(tmp_path):
    """Python's Meter writes in this very process: load() from the same
    process still sees the lock (it belongs to the writer's open file, not
    to the process)."""
    out = tmp_path / "py"
    m = wattmeter.Meter(str(out), period=0.05).start()
    try:
        assert wait_for(lambda: (out / "samples.jsonl").read_bytes().count(b"\n") >= 2, timeout=20)
        r = wattmeter.load(out)
        assert r.running_pid == os.getpid()
        assert json.loads(json.dumps(r.summary))["running_pid"] == os.getpid()
    finally:
        m.stop()
    assert wattmeter.load(out).running_pid is None and wattmeter.load(out).complete is True
