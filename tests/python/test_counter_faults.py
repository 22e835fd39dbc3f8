"""Counter faults at the kernel boundary: numbers that never lie.

A FUSE powercap tree (tests/fixtures/fault_rapl_fuse.py, run with the
system Python and Debian's python3-fusepy) serves RAPL counters at a known
rate and fails on command: EIO, ENODEV, garbage, a step back, a jump, a value
above the range, a zone that vanishes. wattmeter reads it through
--sysfs-root as it reads /sys. The truth is the fixture's rate x time; every
fault must be either measured across (the counter's step over the gap) or
reported missing — never turned into energy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from conftest import PY, REPO, WATTMETER, read_samples, report_json, run_wm

FIXTURE = REPO / "tests" / "fixtures" / "fault_rapl_fuse.py"
SYS_PY = "/usr/bin/python3"
RANGE_262KJ = 262_143_328_850


def _have_fuse() -> bool:
    if not (os.path.exists("/dev/fuse") and shutil.which("fusermount") and os.path.exists(SYS_PY)):
        return False
    return subprocess.run([SYS_PY, "-c", "import fusepy"], capture_output=True).returncode == 0


needs_fuse = pytest.mark.skipif(not _have_fuse(), reason="needs /dev/fuse, fusermount and Debian's python3-fusepy")


class FaultTree:
    def __init__(self, mount: Path, zones: List[str], range_uj: int, limit_uw: int) -> None:
        self.mount = mount
        mount.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [SYS_PY, str(FIXTURE), str(mount), *sum((["--zone", z] for z in zones), []),
             "--range-uj", str(range_uj), "--limit-uw", str(limit_uw)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fault_rapl_fuse did not mount: " + self.proc.stderr.read())
        self.t0 = json.loads(line)["t0_mono"]

    def fault(self, **cmd: Any) -> None:
        with open(self.mount / "control", "w") as f:
            f.write(json.dumps(cmd) + "\n")

    def close(self) -> None:
        subprocess.run(["fusermount", "-u", str(self.mount)], capture_output=True)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # a fixture that died leaves its mount point disconnected: detach it
        subprocess.run(["fusermount", "-u", "-z", str(self.mount)], capture_output=True)


@pytest.fixture
def fault_tree(tmp_path):
    made: List[FaultTree] = []

    def make(zones=("intel-rapl:0:package-0:30",), range_uj=RANGE_262KJ, limit_uw=20_000_000) -> FaultTree:
        t = FaultTree(tmp_path / f"fuse-{len(made)}", list(zones), range_uj, limit_uw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def run_with_faults(tree: FaultTree, out: Path, seconds: float, schedule, period: str = "0.1") -> Dict[str, Any]:
    """wattmeter run -- sleep SECONDS on the tree, firing (at_s, cmd) faults,
    at_s counted from the recording's first sample (a loaded machine may
    take a while to start it)."""
    def fire() -> None:
        samples = out / "samples.jsonl"
        end = time.monotonic() + 20
        while time.monotonic() < end and not (samples.exists() and samples.stat().st_size > 0):
            time.sleep(0.01)
        t_start = time.monotonic()
        for at, cmd in schedule:
            time.sleep(max(0.0, at - (time.monotonic() - t_start)))
            tree.fault(**cmd)

    th = threading.Thread(target=fire)
    p = subprocess.Popen([WATTMETER, "run", "-q", "-o", str(out), "--sysfs-root", str(tree.mount), "--period", period,
                          "--", "sleep", str(seconds)], stderr=subprocess.PIPE, text=True)
    th.start()
    _, err = p.communicate(timeout=60)
    th.join()
    assert p.returncode == 0, err
    return report_json(out)


@needs_fuse
def test_a_5_J_step_back_on_a_262_kJ_range_is_no_wrap(fault_tree, tmp_path):
    """Seen: "cpu 262.29 kJ ... measured" for 5 s at 30 W. The counter steps
    back 5 J and goes on from there: one interval is missing, no more."""
    tree = fault_tree()
    s = run_with_faults(tree, tmp_path / "rec", 5.0, [(2.0, {"zone": "intel-rapl:0", "offset_j": -5})])
    cpu = s["energy_j"]["cpu"]
    truth = 30.0 * s["duration_s"]
    assert truth - 2 * 3.0 - 1.0 <= cpu <= truth + 1.0, (cpu, truth)
    # A 5 J step counted in one 0.1 s period would add 50 W (80 W); 70 W leaves room
    # for the read jitter of a loaded machine (47 W seen at a load of 15).
    assert s["power_w"]["cpu"]["peak"] < 70.0, s["power_w"]
    g = s["gaps"]["cpu"]
    assert g["energy"] in ("missing", "partly missing") and g["energy_missing_s"] > 0, g


@needs_fuse
def test_a_value_above_the_range_and_a_10_kJ_jump_are_glitches(fault_tree, tmp_path):
    """Seen: 267 kJ from a value above max_energy_range_uj, a 99.98 kW peak
    from a +10 kJ jump. Neither is energy: what the counter says across the
    gap is counted, and what it cannot say (a jump that lasts two reads may
    be for good, so the meter follows it) is reported missing."""
    tree = fault_tree()
    s = run_with_faults(tree, tmp_path / "rec", 4.0, [
        (1.0, {"zone": "intel-rapl:0", "fault": "above_range", "for_s": 0.3}),
        (2.5, {"zone": "intel-rapl:0", "fault": "jump", "j": 10000, "for_s": 0.15}),
    ])
    cpu = s["energy_j"]["cpu"]
    truth = 30.0 * s["duration_s"]
    g = s["gaps"]["cpu"]
    assert cpu <= truth + 1.0, (cpu, truth)  # nothing invented
    assert cpu >= truth - 30.0 * g["energy_missing_s"] - 1.0, (cpu, truth, g)  # only what it says is missing
    assert g["energy_missing_s"] <= 0.5, g
    assert s["power_w"]["cpu"]["peak"] < 70.0, s["power_w"]  # a glitch counted gives >= 80 W; jitter under load stays below
    assert g["count"] >= 2, g
    assert "value above range" in g["causes"] and "implausible step" in g["causes"], g


@needs_fuse
def test_transient_eio_and_garbage_give_no_false_peak(fault_tree, tmp_path):
    """Seen: a 479 W peak on a 30 W zone (the gap's energy over one period)."""
    tree = fault_tree()
    out = tmp_path / "rec"
    s = run_with_faults(tree, out, 4.0, [
        (1.0, {"zone": "intel-rapl:0", "fault": "eio", "for_s": 0.6}),
        (2.5, {"zone": "intel-rapl:0", "fault": "garbage", "for_s": 0.3}),
    ])
    truth = 30.0 * s["duration_s"]
    assert abs(s["energy_j"]["cpu"] - truth) < 1.0
    assert s["power_w"]["cpu"]["peak"] < 70.0, s["power_w"]  # a glitch counted gives >= 80 W; jitter under load stays below
    g = s["gaps"]["cpu"]
    assert set(g["causes"]) >= {"EIO", "malformed value"}, g
    assert 0.6 <= g["unreadable_s"] <= 1.6, g
    assert g["energy"] == "measured"
    # the samples say it too, line by line
    lines = read_samples(out)
    assert any(x.get("gap_info", {}).get("package-0", {}).get("cause") == "EIO" for x in lines)
    text = run_wm(["report", str(out)]).stdout
    assert "gap: cpu unreadable for" in text and "measured by the counter across the gap" in text, text


@needs_fuse
def test_a_zone_that_vanishes_is_reported_missing_not_measured(fault_tree, tmp_path):
    """Seen: "cpu 42.0 J ... measured" for a true 150 J, with no word."""
    tree = fault_tree()
    out = tmp_path / "rec"
    s = run_with_faults(tree, out, 5.0, [(1.5, {"zone": "intel-rapl:0", "fault": "vanish"})])
    g = s["gaps"]["cpu"]
    assert g["open_at_end"] is True and g["energy"] == "missing", g
    assert 3.0 <= g["energy_missing_s"] <= 4.0, g
    assert g["causes"][0].startswith("ENODEV")
    assert s["energy_j"]["cpu"] < 30.0 * 2.0
    text = run_wm(["report", str(out)]).stdout
    assert "its energy is missing" in text and "still unreadable at the end" in text, text
    import wattmeter
    assert wattmeter.load(str(out)).gaps["cpu"]["energy"] == "missing"
    html = run_wm(["report", str(out), "--html", str(tmp_path / "r.html")])
    assert html.returncode == 0, html.stderr
    assert "gap: cpu unreadable" in (tmp_path / "r.html").read_text()


@needs_fuse
def test_a_meter_stopped_past_the_wrap_time_marks_the_interval_missing(fault_tree, tmp_path):
    """Seen: SIGSTOP for 4 s on a 1.33 s-wrap zone silently lost half the
    energy. 40 J range, 15 W limit (bound 30 W: a wrap at best every 1.33 s)."""
    tree = fault_tree(zones=("intel-rapl:0:package-0:12",), range_uj=40_000_000, limit_uw=15_000_000)
    out = tmp_path / "rec"
    p = subprocess.Popen([WATTMETER, "run", "-q", "-o", str(out), "--sysfs-root", str(tree.mount), "--period", "0.1",
                          "--", "sleep", "6"], stderr=subprocess.PIPE, text=True)
    samples = out / "samples.jsonl"
    end = time.monotonic() + 20
    while time.monotonic() < end and not (samples.exists() and samples.stat().st_size > 0):
        time.sleep(0.01)
    time.sleep(0.5)
    os.kill(p.pid, signal.SIGSTOP)
    time.sleep(4.0)
    os.kill(p.pid, signal.SIGCONT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    s = report_json(out)
    g = s["gaps"]["cpu"]
    assert g["energy"] == "missing" and 3.8 <= g["energy_missing_s"] <= 4.6, g
    assert "stalled past wrap time" in g["causes"], g
    # what is counted is exact: the rate over the time that was read
    counted_s = s["duration_s"] - g["energy_missing_s"]
    assert abs(s["energy_j"]["cpu"] - 12.0 * counted_s) < 1.5, (s["energy_j"], counted_s)


def test_a_lost_gpu_is_a_gap_to_the_end_with_its_energy_missing(tmp_path):
    """NVML_ERROR_GPU_IS_LOST: the summary says how long and why, and that
    the energy since is missing (seen: no word at all)."""
    from test_gpu_nvml import MOCK, scenario
    if not MOCK:
        pytest.skip("mock libnvidia-ml not built")
    env = scenario(tmp_path, "gpus=2\ngpu0.watts=200\ngpu0.lost_at_s=0.6\ngpu1.watts=50\n")
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "--nvml-lib", MOCK, "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
                "--", "sleep", "1.6"], env=env)
    assert p.returncode == 0, p.stderr
    s = report_json(out)
    g = s["gaps"]["gpu0"]
    assert g["causes"] == ["GPU is lost"] and g["open_at_end"] is True and g["energy"] == "missing", g
    assert 0.6 <= g["energy_missing_s"] <= s["duration_s"], g
    assert "gpu1" not in s["gaps"]
    text = run_wm(["report", str(out)]).stdout
    assert "gap: gpu0 unreadable for" in text and "GPU is lost" in text, text
