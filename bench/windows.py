#!/usr/bin/env python3
"""Windows of work (issue 17): what an edge costs, and what 10,000 edges/s cost.

1. Cost per edge on the caller: wall time of each ``window_begin`` and
   ``window_end`` call through the Python binding (``_native``, so a little
   Python call overhead is included), median and p99 over N edges, also
   from 4 threads at once (the queue's lock shared).
2. 10,000 edges per second (5,000 windows/s) for S seconds, paced: the CPU of
   the whole process over the run (os.times) against the same paced loop with
   no windows, and the meter's own threads' CPU (sampler + edge thread,
   self_cpu_s), as a share of one core. Target: ≤ 5 % of a core in all.
3. Accuracy at that load: the windows' energy against the fake tree's known
   rate x the window's duration.

Nothing asserts a time. Runs on the fake RAPL tree (its writer in its own
process). ``python3 bench/windows.py [--seconds S] [--repeats R]`` →
bench/results/windows-<date>-<host>.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

import wattmeter  # noqa: E402
from wattmeter import _native  # noqa: E402


def edge_costs(m: wattmeter.Meter, n: int) -> dict:
    h = m._handle
    begin_ns, end_ns = [], []
    pc = time.perf_counter_ns
    for i in range(n):
        t0 = pc()
        wid = _native.window_begin(h, "step", None)
        t1 = pc()
        _native.window_end(h, wid, '{"tokens":1}')
        t2 = pc()
        begin_ns.append(t1 - t0)
        end_ns.append(t2 - t1)
        if i % 64 == 0:
            time.sleep(0.0005)  # let the edge thread drain, as real steps would
    return {"begin_us": [x / 1e3 for x in begin_ns], "end_us": [x / 1e3 for x in end_ns]}


def threaded_costs(m: wattmeter.Meter, n_per: int, n_threads: int = 4) -> list:
    out: list = []
    lock = threading.Lock()

    def run() -> None:
        c = edge_costs(m, n_per)
        with lock:
            out.extend(c["begin_us"] + c["end_us"])

    ts = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def paced(m, seconds: float, edges_per_s: float, windows: bool) -> dict:
    """A loop that wakes every 1 ms and issues the edges due; CPU of the process."""
    h = m._handle if windows else None
    per_ms = edges_per_s / 1000.0 / 2.0  # windows per ms (2 edges each)
    t0 = time.monotonic()
    c0 = os.times()
    s0 = m.snapshot()["self_cpu_s"]
    due = 0.0
    done = 0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        due = (now - t0) * 1000.0 * per_ms
        while done < int(due):
            if windows:
                _native.window_end(h, _native.window_begin(h, "w", None), None)
            done += 1
        time.sleep(0.001)
    c1 = os.times()
    wall = time.monotonic() - t0
    if windows:
        m.flush_windows()
    s1 = m.snapshot()["self_cpu_s"]
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"wall_s": wall, "cpu_s": cpu, "edges": 2 * done if windows else 0, "meter_cpu_s": s1 - s0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--edges", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=10000.0, help="edges per second in part 2")
    a = ap.parse_args()
    mach = benchlib.machine()
    data: dict = {"machine": mach, "args": vars(a)}
    with tempfile.TemporaryDirectory() as tmp, benchlib.FakeRaplProc(os.path.join(tmp, "sys"),
                                                                    max_range_uj=262_143_328_850) as fake:
        rates = fake.info.get("device_rates_w") or {}
        # 1. per-edge cost
        single, multi = [], []
        for r in range(a.repeats):
            with wattmeter.Meter(os.path.join(tmp, f"c{r}"), 1.0, sysfs_root=fake.root, no_gpu=True) as m:
                c = edge_costs(m, a.edges // 2)
                single += c["begin_us"] + c["end_us"]
                multi += threaded_costs(m, a.edges // 8)
        data["edge_us"] = {"single": benchlib.stats(single), "p99_single": benchlib.percentile(single, 99),
                           "threads4": benchlib.stats(multi), "p99_threads4": benchlib.percentile(multi, 99)}
        # 2. sustained rate, interleaved with the no-window loop
        runs_w, runs_0 = [], []
        accuracy = []
        for r in range(a.repeats):
            for windows in (False, True):
                d = os.path.join(tmp, f"r{r}{int(windows)}")
                with wattmeter.Meter(d, 1.0, sysfs_root=fake.root, no_gpu=True) as m:
                    res = paced(m, a.seconds, a.rate, windows)
                (runs_w if windows else runs_0).append(res)
                if windows:
                    rows = m.results.windows(frame=False)
                    cpu_rate = float(rates.get("cpu", 0.0)) if isinstance(rates, dict) else 0.0
                    for x in rows[:: max(1, len(rows) // 2000)]:
                        if cpu_rate > 0:
                            accuracy.append(x["energy_j.cpu"] - cpu_rate * x["duration_s"])
        extra = [(w["cpu_s"] - z["cpu_s"]) / w["wall_s"] for w, z in zip(runs_w, runs_0)]
        meter = [w["meter_cpu_s"] / w["wall_s"] for w in runs_w]
        meter0 = [z["meter_cpu_s"] / z["wall_s"] for z in runs_0]
        rate = [w["edges"] / w["wall_s"] for w in runs_w]
        data["sustained"] = {"runs_windows": runs_w, "runs_none": runs_0, "extra_core_share": benchlib.stats(extra),
                             "meter_core_share": benchlib.stats(meter), "meter_core_share_no_windows":
                             benchlib.stats(meter0), "edges_per_s": benchlib.stats(rate)}
        data["accuracy_err_j"] = benchlib.stats([abs(x) for x in accuracy])
        data["rates"] = rates
    e = data["edge_us"]
    s = data["sustained"]
    md = [f"# Windows: cost per edge and at {a.rate:.0f} edges/s — {benchlib.stamp()}", "",
          benchlib.machine_md(mach), "",
          "Median (min–max) over the repeats. Python binding included in the caller's cost.", "",
          "| measure | result | target |", "|---|---|---|",
          f"| caller's cost per edge, one thread (µs) | {benchlib.fmt(e['single'])}, p99 {e['p99_single']:.3g} | ≤ 20 µs |",
          f"| caller's cost per edge, 4 threads at once (µs) | {benchlib.fmt(e['threads4'])}, p99 {e['p99_threads4']:.3g} | ≤ 20 µs |",
          f"| edges per second sustained | {benchlib.fmt(s['edges_per_s'])} | 10,000 |",
          f"| extra CPU of the process at that rate (share of one core) | {benchlib.fmt(s['extra_core_share'], 100)} % | ≤ 5 % |",
          f"| meter threads' CPU (sampler + edge thread), with windows | {benchlib.fmt(s['meter_core_share'], 100)} % | |",
          f"| meter threads' CPU, no windows | {benchlib.fmt(s['meter_core_share_no_windows'], 100)} % | |",
          f"| \\|window cpu energy − rate × duration\\| at that load (mJ) | {benchlib.fmt(data['accuracy_err_j'], 1000)} | |",
          ""]
    base = os.path.join(HERE, "results", f"windows-{benchlib.stamp()}-{mach['host']}")
    benchlib.write_results(base, "\n".join(md) + "\n", data)
    print("\n".join(md))
    print(f"wrote {base}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
