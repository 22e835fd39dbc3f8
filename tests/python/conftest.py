"""Shared helpers for the wattmeter pytest suite.

Every test runs the real, installed ``wattmeter`` command (or the installed
Python package) on real child processes and real files, each in its own
``tmp_path``. RAPL counters come from ``tests/fixtures/fake_rapl.py`` (a fake
powercap tree whose counters advance at known rates) where a test needs known
energies; elsewhere the machine's own state is used (no RAPL here: modeled).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
PY = sys.executable  # the real interpreter, not a pyenv shim script

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from fake_rapl import FakeRapl  # noqa: E402  (tests/fixtures, written for these tests)

# Fast sampling keeps runs short while still giving many samples.
FAST = ["--period", "0.05", "--proc-period", "0.2"]


def find_wattmeter() -> Optional[str]:
    """The installed CLI: the scripts folder of this interpreter first (a real
    ELF, not a pyenv shim), then PATH."""
    cand = os.path.join(sysconfig.get_path("scripts"), "wattmeter")
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    return shutil.which("wattmeter")


WATTMETER = find_wattmeter()


@pytest.fixture(scope="session")
def wm() -> str:
    """Path of the wattmeter executable (skips the test if it is not installed)."""
    if not WATTMETER:
        pytest.skip("wattmeter CLI not installed: run `python3 -m pip install .`")
    return WATTMETER


def run_wm(args: Sequence[str], *, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    """Runs `wattmeter ARGS...` to completion, capturing text stdout/stderr."""
    assert WATTMETER, "wattmeter CLI not installed"
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([WATTMETER, *args], capture_output=True, text=True, timeout=timeout, **kw)


def report_json(dir: os.PathLike | str) -> Dict[str, Any]:
    """`wattmeter report DIR --json`, parsed; asserts it succeeded."""
    p = run_wm(["report", str(dir), "--json"])
    assert p.returncode == 0, f"report --json failed ({p.returncode}): {p.stderr}"
    return json.loads(p.stdout)


def read_meta(dir: os.PathLike | str) -> Dict[str, Any]:
    with open(os.path.join(dir, "meta.json"), encoding="utf-8") as f:
        return json.load(f)


def read_sample_lines(dir: os.PathLike | str) -> List[str]:
    with open(os.path.join(dir, "samples.jsonl"), encoding="utf-8") as f:
        return f.read().splitlines()


def read_samples(dir: os.PathLike | str) -> List[Dict[str, Any]]:
    """Every line of samples.jsonl parsed (each must be well-formed JSON)."""
    return [json.loads(line) for line in read_sample_lines(dir)]


def py_cmd(code: str) -> List[str]:
    """A `python3 -c CODE` command line using this interpreter."""
    return [PY, "-c", code]


def busy_code(seconds: float) -> str:
    """Python source that burns one CPU for `seconds`."""
    return (
        "import time\n"
        f"end = time.monotonic() + {seconds}\n"
        "n = 0\n"
        "while time.monotonic() < end:\n"
        "    n += 1\n"
    )


def wait_for(pred, timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def proc_stat_busy_total() -> tuple:
    """(busy, total) CPU ticks of the whole machine from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return total - idle, total


def proc_ticks(pid: int) -> int:
    """The CPU ticks (utime + stime) of one process from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def fake_rapl(tmp_path):
    """Factory: fake_rapl(layout=..., **kw) builds and starts a FakeRapl tree
    under tmp_path/sys-<n>; every one started is stopped at teardown."""
    made: List[FakeRapl] = []

    def make(layout: str = "intel-2pkg", root: Optional[Path] = None, start: bool = True, **kw: Any) -> FakeRapl:
        r = root or tmp_path / f"sys-{len(made)}"
        f = FakeRapl(str(r), layout=layout, **kw)
        if start:
            f.start(interval_s=0.005)
        made.append(f)
        return f

    yield make
    for f in made:
        f.stop()


def kill_quietly(pid: int, sig: int = 9) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def world_dir(wm):
    """A folder any user can enter, holding a copy of the wattmeter executable
    (tmp_path and /root are 0700, so an unprivileged user can reach neither).
    Skips unless we are root, since only root can run a command as nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the CLI as user nobody")
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="wattmeter-test-", dir="/tmp"))
    d.chmod(0o755)
    shutil.copy2(wm, d / "wattmeter")
    (d / "wattmeter").chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def assert_child_cpu(got: float, want: float, proc_period: float, what: str = "cpu_s") -> None:
    """A process that exits between two process scans has its last CPU (at
    most one process period of it) counted in its reaping parent's cpu_s, as
    docs/recording.md says ("the unseen tail of children it reaped"): so its
    own cpu_s is `want` minus up to one period, never more than `want`."""
    slack = 0.05  # clock-tick rounding (1/CLK_TCK per read) and the burn loop's overshoot
    assert want - proc_period - slack <= got <= want + slack, \
        f"{what}: {got:.3f} s, want {want:.3f} s (minus at most {proc_period} s reaped tail)"
