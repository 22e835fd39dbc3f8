#!/usr/bin/env python3
"""peer_driver — one measured run of the peers benchmark (bench/peers.py).

Runs the workload (W forked worker processes burning CPU in a Python loop for
S seconds; this main process only waits for them) under one tool living in
this process, as a user of that tool would write it:

  none            no tool (the baseline)
  wattmeter-py    wattmeter.Meter(period=P, proc_period=P)
  codecarbon      codecarbon.OfflineEmissionsTracker(tracking_mode="process",
                  measure_power_secs=P, save_to_file=False)
  zeus            zeus.monitor.ZeusMonitor(cpu_indices=all, gpu_indices=[]),
                  begin_window / end_window (Zeus has no sampling period: it
                  reads the counters at the window's ends, plus a poller
                  process that checks for wrap-around)
  carbontracker   carbontracker.tracker.CarbonTracker(epochs=1, components="cpu",
                  update_interval=P), epoch_start / epoch_end / stop
  eco2ai          eco2ai.Tracker(measure_period=P, cpu_processes="current"),
                  start / stop

Every worker is reaped with os.wait4, which gives its exact CPU time; the
driver prints (or writes to --json-out) one JSON object with the workers' CPU,
getrusage(SELF) and (CHILDREN) at phase boundaries, and its own peak RSS. The
parent (peers.py) reaps this process with wait4 too: tool cost = that total −
workers' CPU, minus the same for the baseline.

With --rusage-out FILE (the baseline run under `wattmeter run`), it writes its
whole CPU (self + reaped children) there and leaves with os._exit at once, so
the wattmeter process's own CPU is wait4(wattmeter) − that figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workload import burn_until  # noqa: E402


TCK = os.sysconf("SC_CLK_TCK")


def live_descendants(exclude=()) -> tuple:
    """CPU seconds (10 ms ticks) and RSS of this process's live descendants:
    helper processes a tool started and has not reaped yet."""
    seen, todo, cpu_s, rss_kb = set(), [os.getpid()], 0.0, 0
    while todo:
        pid = todo.pop()
        try:
            kids = []
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids += [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            if k in seen or k in exclude:
                continue
            seen.add(k)
            todo.append(k)
            try:
                with open(f"/proc/{k}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu_s += (int(fields[11]) + int(fields[12])) / TCK
                with open(f"/proc/{k}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss_kb += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return cpu_s, rss_kb, len(seen)


def cpu(exclude=()) -> dict:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    live, live_rss, n_live = live_descendants(exclude)
    return {"self": s.ru_utime + s.ru_stime, "children": c.ru_utime + c.ru_stime, "live": live,
            "total": s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime + live,
            "self_maxrss_kb": s.ru_maxrss, "live_rss_kb": live_rss, "n_live": n_live}


class Tool:
    def start(self) -> None: ...
    def stop(self) -> dict:
        return {}


class NoTool(Tool):
    pass


class WattmeterPy(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        import wattmeter
        self.dir = os.path.join(tmp, "wm")
        self.m = wattmeter.Meter(self.dir, period=period, proc_period=period)

    def start(self) -> None:
        self.m.start()

    def stop(self) -> dict:
        self.m.stop()
        with open(os.path.join(self.dir, "meta.json")) as f:
            meta = json.load(f)
        return {"self_cpu_s": meta["self"]["cpu_s"], "samples": meta["self"]["samples"],
                "cpu_method": {d["name"]: d["method"] for d in meta["devices"]}.get("cpu")}


class CodeCarbon(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        from codecarbon import OfflineEmissionsTracker
        self.t = OfflineEmissionsTracker(country_iso_code="FRA", tracking_mode="process",
                                         measure_power_secs=period, save_to_file=False,
                                         log_level="error", output_dir=tmp)

    def start(self) -> None:
        self.t.start()

    def stop(self) -> dict:
        e = self.t.stop()
        return {"emissions_kg": e, "measurements": getattr(self.t, "_measure_occurrence", None),
                "hardware": [repr(h)[:120] for h in getattr(self.t, "_hardware", [])]}


class Zeus(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        from zeus.monitor import ZeusMonitor
        self.m = ZeusMonitor(gpu_indices=[], approx_instant_energy=True)

    def start(self) -> None:
        self.m.begin_window("bench", sync_execution=False)

    def stop(self) -> dict:
        w = self.m.end_window("bench", sync_execution=False)
        out = {"cpu_energy_j": dict(w.cpu_energy or {}), "time_s": w.time}
        # the wrap-around poller is a child process: stop and reap it here so
        # its CPU is counted (it is otherwise stopped from __del__)
        try:
            for c in getattr(self.m.cpus, "cpus", []):
                for tr in getattr(c, "rapl_wraparound_trackers", []) or []:
                    tr._stop()
        except Exception as e:  # noqa: BLE001
            out["poller_stop_error"] = repr(e)
        del self.m
        gc.collect()
        return out


class CarbonTrackerTool(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        from carbontracker.tracker import CarbonTracker
        self.t = CarbonTracker(epochs=1, epochs_before_pred=0, monitor_epochs=1, update_interval=period,
                               components="cpu", log_dir=tmp, verbose=0)

    def start(self) -> None:
        self.t.epoch_start()

    def stop(self) -> dict:
        self.t.epoch_end()
        self.t.stop()
        return {}


class Eco2AI(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        import eco2ai
        self.t = eco2ai.Tracker(project_name="bench", measure_period=period, cpu_processes="current",
                                file_name=os.path.join(tmp, "eco2ai.csv"), alpha_2_code="FR",
                                ignore_warnings=True)

    def start(self) -> None:
        self.t.start()

    def stop(self) -> dict:
        self.t.stop()
        return {}


TOOLS = {"none": lambda p, t: NoTool(), "wattmeter-py": WattmeterPy, "codecarbon": CodeCarbon,
         "zeus": Zeus, "carbontracker": CarbonTrackerTool, "eco2ai": Eco2AI}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=sorted(TOOLS), default="none")
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json-out")
    ap.add_argument("--rusage-out")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="peer-")
    ph = {"start": cpu()}
    t_wall0 = time.monotonic()
    tool = TOOLS[a.tool](a.period, tmp)
    ph["imported"] = cpu()
    tool.start()
    ph["started"] = cpu()
    deadline = time.monotonic() + a.seconds
    pids = []
    for _ in range(a.workers):
        pid = os.fork()
        if pid == 0:
            try:
                burn_until(deadline)
            finally:
                os._exit(0)
        pids.append(pid)
    time.sleep(min(1.0, a.seconds / 2))
    ph["working"] = cpu(exclude=set(pids))  # helpers' RSS while they run
    workers_cpu = 0.0
    for pid in pids:
        _, _, ru = os.wait4(pid, 0)
        workers_cpu += ru.ru_utime + ru.ru_stime
    ph["worked"] = cpu()
    extra = tool.stop()
    ph["stopped"] = cpu()
    res = {"tool": a.tool, "period": a.period, "seconds": a.seconds, "workers_cpu_s": workers_cpu,
           "phases": ph, "wall_s": time.monotonic() - t_wall0, "extra": extra, "pid": os.getpid()}
    if a.rusage_out:
        c = cpu()
        with open(a.rusage_out, "w") as f:
            json.dump({"cpu_s": c["self"] + c["children"], "self_maxrss_kb": c["self_maxrss_kb"],
                       "children_maxrss_kb": 0, "workers_cpu_s": workers_cpu}, f)
        os._exit(0)
    out = json.dumps(res, default=str)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(out)
    else:
        print(out)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
