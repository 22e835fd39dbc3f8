"""benchlib — shared helpers for the wattmeter benchmarks. Standard library only.

- machine(): what the figures were measured on;
- FakeRaplProc: tests/fixtures/fake_rapl.py in its own process (its writer
  thread's CPU is never charged to wattmeter);
- run_cli(): one `wattmeter run` of bench/workload.py, with the wattmeter
  process's own CPU from the parent's side (wait4 rusage minus the workload's
  self-reported rusage) and its peak RSS (VmHWM polled from /proc);
- read_recording(), stats(), fmt helpers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, Iterable, List, Optional, Sequence

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
WORKLOAD = os.path.join(BENCH, "workload.py")
FAKE_RAPL = os.path.join(REPO, "tests", "fixtures", "fake_rapl.py")


# ---- the machine -------------------------------------------------------------

def machine() -> Dict[str, object]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    virt = ""
    try:
        with open("/proc/cpuinfo") as f:
            virt = "hypervisor" if " hypervisor" in f.read() else "bare metal?"
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "virtualisation": virt,
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "rapl_on_host": os.path.isdir("/sys/class/powercap/intel-rapl:0"),
    }


def machine_md(m: Dict[str, object]) -> str:
    return (f"- host `{m['host']}`, {m['date_utc']}\n"
            f"- CPU: {m['cpu_model']}, {m['cores']} logical cores ({m['virtualisation']}), "
            f"{m['mem_gib']} GiB RAM\n"
            f"- kernel {m['kernel']}, Python {m['python']}, load average at start "
            f"{', '.join('%.2f' % x for x in m['loadavg_at_start'])}\n"
            f"- real RAPL counters on this host: {'yes' if m['rapl_on_host'] else 'no (fake tree used)'}\n")


def stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


# ---- statistics ----------------------------------------------------------------

def stats(xs: Iterable[float]) -> Dict[str, float]:
    v = sorted(x for x in xs if x is not None)
    if not v:
        return {"n": 0, "median": float("nan"), "min": float("nan"), "max": float("nan"),
                "q1": float("nan"), "q3": float("nan")}
    if len(v) >= 4:
        q = statistics.quantiles(v, n=4, method="inclusive")
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = v[0], v[-1]
    return {"n": len(v), "median": statistics.median(v), "min": v[0], "max": v[-1], "q1": q1, "q3": q3}


def fmt(s: Dict[str, float], scale: float = 1.0, digits: int = 3, spread: str = "minmax") -> str:
    """'1.23 (1.10–1.40)': median (min–max), scaled; or IQR with spread='iqr'."""
    if not s or s.get("n", 0) == 0:
        return "n/a"

    def g(x: float) -> str:
        return f"{x * scale:.{digits}g}"

    lo, hi = (s["min"], s["max"]) if spread == "minmax" else (s["q1"], s["q3"])
    return f"{g(s['median'])} ({g(lo)}–{g(hi)})"


def percentile(v: Sequence[float], p: float) -> float:
    if not v:
        return float("nan")
    s = sorted(v)
    k = (len(s) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


# ---- the fake RAPL tree ----------------------------------------------------------

class FakeRaplProc:
    """fake_rapl.py as a separate process writing a tree under `root`."""

    def __init__(self, root: str, layout: str = "intel-2pkg", interval_s: float = 0.005,
                 max_range_uj: Optional[int] = None, extra: Sequence[str] = ()) -> None:
        cmd = [sys.executable, FAKE_RAPL, root, "--layout", layout, "--interval", str(interval_s)]
        if max_range_uj:
            cmd += ["--max-range-uj", str(max_range_uj)]
        cmd += list(extra)
        self.root = root
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fake_rapl did not start: {cmd}")
        self.info = json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "FakeRaplProc":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- running wattmeter ----------------------------------------------------------------

def wattmeter_bin() -> str:
    for p in (os.environ.get("WATTMETER_BIN"), os.path.join(REPO, "build-bench", "wattmeter")):
        if p and os.access(p, os.X_OK):
            return p
    p = shutil.which("wattmeter")
    if not p:
        raise SystemExit("no wattmeter binary: run `meson setup build-bench -Dbuildtype=release && "
                         "ninja -C build-bench` or `pip install .`, or set WATTMETER_BIN")
    return p


def read_status_kb(pid: int, key: str) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class HwmPoller:
    """Polls VmHWM (peak RSS of the process's own memory) until stopped."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        self.pid, self.every_s, self.hwm_kb = pid, every_s, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            v = read_status_kb(self.pid, "VmHWM")
            if v:
                self.hwm_kb = max(self.hwm_kb, v)
            self._stop.wait(self.every_s)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.hwm_kb


def read_recording(d: str) -> Dict[str, object]:
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    t, self_cpu, nprocs = [], [], []
    proc_lines = 0
    path = os.path.join(d, "samples.jsonl")
    with open(path, "rb") as f:
        for raw in f:
            try:
                s = json.loads(raw)
            except ValueError:
                continue
            t.append(s["t_s"])
            self_cpu.append(s.get("self_cpu_s"))
            if "procs" in s:
                proc_lines += 1
                nprocs.append(len(s["procs"]))
    return {
        "meta": meta,
        "t_s": t,
        "self_cpu_series": self_cpu,
        "proc_lines": proc_lines,
        "procs_per_proc_line": nprocs,
        "samples_bytes": os.path.getsize(path),
        "meta_bytes": os.path.getsize(os.path.join(d, "meta.json")),
    }


def run_cli(outdir: str, wm_args: Sequence[str], seconds: float, children: int = 3,
            child_mode: str = "light", main_mode: str = "busy", workload_cmd: Optional[List[str]] = None,
            wm_bin: Optional[str] = None) -> Dict[str, object]:
    """One `wattmeter run -q -o outdir [wm_args] -- python3 workload.py ...`.

    Returns the recording's figures plus, from the parent's side:
      wm_total_cpu_s: wait4 rusage of the wattmeter process (includes the
                      workload, which it reaped) ...
      workload_cpu_s: ... minus what the workload reports for itself and its
                      children just before os._exit ...
      wm_cpu_s:       = wattmeter's own CPU: exec, dynamic loading, probing,
                      fork, the sampler thread, the summary, exit.
      wm_hwm_kb:      peak RSS of the wattmeter process (VmHWM, polled every
                      0.1 s; ru_maxrss cannot be used: for wait4 it is the
                      max over the process and the children it reaped).
    """
    fd, rus_path = tempfile.mkstemp(prefix="wm-rusage-", suffix=".json")
    os.close(fd)
    wl = workload_cmd or [sys.executable, WORKLOAD, "--seconds", str(seconds), "--children", str(children),
                          "--child-mode", child_mode, "--main", main_mode]
    cmd = [wm_bin or wattmeter_bin(), "run", "-q", "-o", outdir, *wm_args, "--", *wl, "--rusage-out", rus_path]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    poll = HwmPoller(proc.pid)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    hwm = poll.stop()
    try:
        with open(rus_path) as f:
            wl_ru = json.load(f)
    finally:
        os.unlink(rus_path)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}")
    rec = read_recording(outdir)
    total = ru.ru_utime + ru.ru_stime
    meta = rec["meta"]
    samples = meta["self"]["samples"]
    dur = meta["duration_s"]
    return {
        "cmd": cmd,
        "wall_s": wall,
        "duration_s": dur,
        "samples": samples,
        "self_cpu_s": meta["self"]["cpu_s"],
        "memory_rounds_read": meta["self"].get("memory_rounds_read", 0),
        "memory_rounds_reused": meta["self"].get("memory_rounds_reused", 0),
        "wm_total_cpu_s": total,
        "workload_cpu_s": wl_ru["cpu_s"],
        "wm_cpu_s": total - wl_ru["cpu_s"],
        "wm_hwm_kb": hwm,
        "wait4_maxrss_kb": ru.ru_maxrss,
        "workload_maxrss_kb": max(wl_ru["self_maxrss_kb"], wl_ru["children_maxrss_kb"]),
        "workload_marks": {k: wl_ru[k] for k in ("t_working", "t_worked") if k in wl_ru},
        "samples_bytes": rec["samples_bytes"],
        "meta_bytes": rec["meta_bytes"],
        "proc_lines": rec["proc_lines"],
        "procs_per_proc_line": (statistics.median(rec["procs_per_proc_line"])
                                if rec["procs_per_proc_line"] else 0),
        "t_s": rec["t_s"],
        "self_cpu_series": rec["self_cpu_series"],
        "methods": {d["name"]: d["method"] for d in meta.get("devices", [])},
    }


def write_results(base: str, md: str, data: Dict[str, object]) -> None:
    os.makedirs(os.path.dirname(base), exist_ok=True)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")


# ---- counting reads of the fake counters (inotify IN_ACCESS) -------------------------

class ReadCounter:
    """Timestamps every read of the watched files, from inotify IN_ACCESS.

    The kernel raises IN_ACCESS on the inode for each read() or pread() that
    returns data, through any mount of it (bind mounts keep the inode), so the
    fake tree's files show every tool's reads wherever the tool opened them.
    The fake writer only writes (IN_MODIFY, not watched). inotify merges an
    event with the previous one only when both are identical and the first is
    still unread; a tool reads several zones per sample, so consecutive reads
    of one file are rare and counts are exact or a slight undercount."""

    IN_ACCESS = 0x1
    IN_NONBLOCK = 0o4000
    IN_CLOEXEC = 0o2000000

    def __init__(self, paths: Sequence[str]) -> None:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(self.IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.wd_path: Dict[int, str] = {}
        for p in paths:
            wd = libc.inotify_add_watch(self.fd, p.encode(), self.IN_ACCESS)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {p}")
            self.wd_path[wd] = p
        self.events: List[tuple] = []  # (monotonic s, path)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        import select
        import struct
        while not self._stop.is_set():
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if not r:
                continue
            buf = os.read(self.fd, 65536)
            now = time.monotonic()
            off = 0
            while off + 16 <= len(buf):
                wd, mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                off += 16 + ln
                if mask & self.IN_ACCESS:
                    self.events.append((now, self.wd_path.get(wd, "?")))

    def count(self, path_suffix: str, t0: float = 0.0, t1: float = float("inf")) -> int:
        return sum(1 for t, p in self.events if t0 <= t <= t1 and p.endswith(path_suffix))

    def rate_hz(self, path_suffix: str, t0: float, t1: float) -> float:
        """Reads per second in [t0, t1]: (n - 1) over the first-to-last span
        (no quantisation to whole periods), or n / (t1 - t0) if n < 3."""
        ts = [t for t, p in self.events if t0 <= t <= t1 and p.endswith(path_suffix)]
        if len(ts) >= 3 and ts[-1] > ts[0]:
            return (len(ts) - 1) / (ts[-1] - ts[0])
        return len(ts) / (t1 - t0) if t1 > t0 else float("nan")

    def reset(self) -> None:
        self.events = []

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        os.close(self.fd)
