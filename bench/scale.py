#!/usr/bin/env python3
"""scale — cost per sample against the number of measured processes, and
against the floor (bench/floor.c).

Process tier: a spawner (bench/workload.py --main sleep --child-mode sleep
--children N) is started on its own; while it lives,

    wattmeter run -q --period 0.1 --proc-period 0.1 --no-memory --pid SPAWNER -- sleep S

measures it (every sample is a process-tier sample; memory reads off so the
figure is the scan alone), then `floor --tier proc --period 0.1` does the bare reads against the same
/proc at the same period (the periodic floor: reads + waking up cold), and
flat out (the tight floor: reads alone, caches warm). N = 10, 100, 1000, and the whole machine (--pid 1).
Counter tier: `wattmeter run --sysfs-root FAKE --period 0.01 --proc-period
1000 --no-memory -- sleep S` (the process tier runs only at the stop) against
`floor --tier counter` on the same tree; and `floor --tier wake`, the cost of
nothing but waking up every period, to show where the difference goes.
Per sample = self.cpu_s / samples.

Unrelated processes (--unrelated, its own table): the same measured tree
(a spawner and 10 sleeping children, measured with --pid as above) on a
machine holding 0, 1,000, 2,000, 3,000 and 5,000 more sleeping processes that
are not measured (forked by a helper in its own session). Per count:
ours with the default discovery (the kernel's child lists), ours with
WATTMETER_PROC_DISCOVERY=scan (the full scan of the procfs root, the
method before child lists, the same set), the measured-set floor
(`floor --tier measured --tree SPAWNER --period 0.1`: only the measured
processes' stat files on kept fds, plus /proc/stat and meminfo), the
exporter's `serve --per-process --period 1` (the whole machine, which
keeps the full scan: its CPU per process scan, from its threads'
schedstat over 4 s after a warm-up), and the default `run` (period 0.5 s, process
period 1 s, memory every 10 s; and with --no-memory) as a share of one
core over a 75 s run: the whole run (self.cpu_s / duration_s, the start's
probing and the stop's summary included) and its steady state (the self CPU
of the sample lines from 15 s to the last periodic one, over that span: it
holds one memory read that the reuse rule forces, see STEADY_FROM_S).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

FLOOR = os.path.join(bl.REPO, "build-bench", "floor")


def floor(*args: str) -> dict:
    out = subprocess.run([FLOOR, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def ours(out: str, wm_args, seconds: float, wm_bin=None) -> dict:
    # `sleep S` in Python: run_cli appends --rusage-out FILE to the command
    wl = [sys.executable, "-c",
          "import sys,time,os,json,resource;time.sleep(float(sys.argv[1]));"
          "r=resource.getrusage(resource.RUSAGE_SELF);"
          "open(sys.argv[3],'w').write(json.dumps({'cpu_s':r.ru_utime+r.ru_stime,"
          "'self_maxrss_kb':r.ru_maxrss,'children_maxrss_kb':0}));os._exit(0)", str(seconds)]
    r = bl.run_cli(out, wm_args, seconds, workload_cmd=wl, wm_bin=wm_bin)
    shutil.rmtree(out, ignore_errors=True)
    return r


def count_pids() -> int:
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


def run(repeats: int, seconds: float, ns=(10, 100, 1000), log=print) -> dict:
    tmp = tempfile.mkdtemp(prefix="wm-scale-")
    rows = {}
    try:
        for k in range(repeats):
            # the whole machine first: right after a row, its 1000 killed
            # children are still being reaped by init, which measured the
            # churn of their exits instead of a steady machine
            for n in ["machine"] + list(ns):
                sp = None
                pids_before = count_pids()
                if n != "machine":
                    # own session, so the whole tree is killed with its group id
                    sp = subprocess.Popen([sys.executable, bl.WORKLOAD, "--seconds", str(seconds + 20),
                                           "--children", str(n), "--child-mode", "sleep", "--main", "sleep"],
                                          start_new_session=True)
                    # wait until all children exist
                    t_end = time.monotonic() + 30
                    while time.monotonic() < t_end:
                        try:
                            with open(f"/proc/{sp.pid}/task/{sp.pid}/children") as f:
                                if len(f.read().split()) >= n:
                                    break
                        except OSError:
                            pass
                        time.sleep(0.05)
                pid = sp.pid if sp else 1
                r = ours(os.path.join(tmp, f"rec-{n}-{k}"),
                         ["--period", "0.1", "--proc-period", "0.1", "--no-memory", "--pid", str(pid)], seconds)
                fl = floor("--tier", "proc", "--period", "0.1", "--min-seconds", "1.5")
                ft = floor("--tier", "proc", "--min-seconds", "0.5")
                if sp:
                    os.killpg(sp.pid, signal.SIGKILL)
                    sp.wait()
                    # let init reap the children before the next row: wait
                    # until the machine's pid count is back where it was
                    t_end = time.monotonic() + 30
                    while time.monotonic() < t_end and count_pids() > pids_before + 5:
                        time.sleep(0.1)
                    time.sleep(0.5)
                nprocs = r["procs_per_proc_line"]
                x = {"us_per_sample": 1e6 * r["self_cpu_s"] / r["samples"], "procs_measured": nprocs,
                     "pids_on_machine": fl["pids"], "floor_us": fl["cpu_ns_per_iter"] / 1e3,
                     "tight_floor_us": ft["cpu_ns_per_iter"] / 1e3,
                     "ratio": (1e6 * r["self_cpu_s"] / r["samples"]) / (fl["cpu_ns_per_iter"] / 1e3),
                     "bytes_per_sample": r["samples_bytes"] / r["samples"]}
                rows.setdefault(str(n), []).append(x)
                log(f"  [{k + 1}/{repeats}] N={n}: {x['us_per_sample']:.0f} µs/sample for {nprocs:g} measured "
                    f"processes ({fl['pids']} on the machine); floor {x['floor_us']:.0f} µs")
        # counter tier
        with bl.FakeRaplProc(os.path.join(tmp, "sys"), max_range_uj=262143328850) as fake:
            for k in range(repeats):
                r = ours(os.path.join(tmp, f"rec-c-{k}"),
                         ["--sysfs-root", fake.root, "--period", "0.01", "--proc-period", "1000", "--no-memory"],
                         seconds)
                fl = floor("--sysfs-root", fake.root, "--tier", "counter", "--period", "0.01", "--min-seconds", "1.5")
                ft = floor("--sysfs-root", fake.root, "--tier", "counter", "--min-seconds", "0.5")
                wk = floor("--tier", "wake", "--period", "0.01", "--min-seconds", "1")
                # what a sampler does beyond the reads: append a line, read its thread clock
                wl = os.path.join(tmp, "floor-lines.jsonl")
                ftw = floor("--sysfs-root", fake.root, "--tier", "counter", "--min-seconds", "0.5",
                            "--write", wl, "--cputime")
                flw = floor("--sysfs-root", fake.root, "--tier", "counter", "--period", "0.01",
                            "--min-seconds", "1.5", "--write", wl, "--cputime")
                us = 1e6 * r["self_cpu_s"] / r["samples"]
                x = {"us_per_sample": us, "floor_us": fl["cpu_ns_per_iter"] / 1e3,
                     "tight_floor_us": ft["cpu_ns_per_iter"] / 1e3,
                     "wake_us": wk["cpu_ns_per_iter"] / 1e3, "zones": fl["zones"],
                     "tight_write_us": ftw["cpu_ns_per_iter"] / 1e3,
                     "periodic_write_us": flw["cpu_ns_per_iter"] / 1e3,
                     "ratio": us / (fl["cpu_ns_per_iter"] / 1e3),
                     "ratio_tight": us / (ft["cpu_ns_per_iter"] / 1e3),
                     "bytes_per_sample": r["samples_bytes"] / r["samples"]}
                rows.setdefault("counter", []).append(x)
                log(f"  [{k + 1}/{repeats}] counter tier: {x['us_per_sample']:.0f} µs/sample; periodic floor "
                    f"{x['floor_us']:.1f} µs, tight {x['tight_floor_us']:.1f} µs, wake-up alone {x['wake_us']:.1f} µs")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {n: {k: bl.stats([r[k] for r in rs]) for k in rs[0]} for n, rs in rows.items()}
    return {"summary": summary, "runs": rows}


UNRELATED_SPAWNER = r"""
import os, signal, sys
n = int(sys.argv[1])
for _ in range(n):
    if os.fork() == 0:
        while True:
            signal.pause()
print("ready", flush=True)
while True:
    signal.pause()
"""


def spawn_unrelated(n: int):
    """n sleeping processes in their own session; (Popen or None)."""
    if n <= 0:
        return None
    sp = subprocess.Popen([sys.executable, "-c", UNRELATED_SPAWNER, str(n)], stdout=subprocess.PIPE,
                          text=True, start_new_session=True)
    assert sp.stdout is not None
    if sp.stdout.readline().strip() != "ready":
        raise RuntimeError("the unrelated-process spawner did not start")
    return sp


def kill_group(sp, pids_before: int) -> None:
    if not sp:
        return
    os.killpg(sp.pid, signal.SIGKILL)
    sp.wait()
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end and count_pids() > pids_before + 5:
        time.sleep(0.1)


def proc_cpu_s(pid: int) -> float:
    """CPU seconds of every thread of pid, at ns resolution (task/*/schedstat:
    the stat file's 10 ms ticks are too coarse for a few scans)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def exporter_cost(seconds: float = 4.0) -> float:
    """`serve --per-process --period 1`: CPU seconds per process scan (one a second)."""
    wm = bl.wattmeter_bin()
    sp = subprocess.Popen([wm, "serve", "--per-process", "--period", "1", "--no-gpu", "--listen", "127.0.0.1:0"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.5)   # the baseline (every pid read) and the first scans
        c0, t0 = proc_cpu_s(sp.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = proc_cpu_s(sp.pid), time.monotonic()
    finally:
        sp.terminate()
        sp.wait()
    return (c1 - c0) / max(1.0, round(t1 - t0))


def with_env(var: str, value: str, fn, *args):
    old = os.environ.get(var)
    os.environ[var] = value
    try:
        return fn(*args)
    finally:
        if old is None:
            del os.environ[var]
        else:
            os.environ[var] = old


# The default run's steady state: its self CPU from this many seconds in to
# its last periodic sample, over that span. With a 75 s run the span (15 s to
# about 74.5 s) holds the memory tier's rounds at 20..70 s (the one at 10 s
# still sees the command's own start-up faults), and so the one read in six
# that the reuse rule forces (proctree.h) at 70 s: what a long run costs a
# minute, without the start's probing and the stop's summary.
STEADY_FROM_S = 15.0


def steady_core_pct(r: dict) -> float:
    pts = [(t, c) for t, c in zip(r["t_s"], r["self_cpu_series"]) if c is not None and t >= STEADY_FROM_S]
    pts = pts[:-1]   # the stop's sample: the summary's work
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return float("nan")
    return 100.0 * (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def unrelated(repeats: int, seconds: float, counts=(0, 1000, 2000, 3000, 5000), children: int = 10,
              default_seconds: float = 75.0, log=print) -> dict:
    tmp = tempfile.mkdtemp(prefix="wm-unrelated-")
    rows: dict = {}
    args = ["--period", "0.1", "--proc-period", "0.1", "--no-memory"]
    try:
        for k in range(repeats):
            for n in counts:
                pids_before = count_pids()
                un = spawn_unrelated(n)
                sp = subprocess.Popen([sys.executable, bl.WORKLOAD, "--seconds", str(4 * seconds + 2 * default_seconds + 60),
                                       "--children", str(children), "--child-mode", "sleep", "--main", "sleep"],
                                      start_new_session=True)
                try:
                    t_end = time.monotonic() + 30
                    while time.monotonic() < t_end:
                        try:
                            with open(f"/proc/{sp.pid}/task/{sp.pid}/children") as f:
                                if len(f.read().split()) >= children:
                                    break
                        except OSError:
                            pass
                        time.sleep(0.05)
                    time.sleep(0.5)
                    tree = ["--pid", str(sp.pid)]
                    r = ours(os.path.join(tmp, f"rec-u{n}-{k}"), args + tree, seconds)
                    rs = with_env("WATTMETER_PROC_DISCOVERY", "scan", ours, os.path.join(tmp, f"rec-s{n}-{k}"),
                                  args + tree, seconds)
                    fl = floor("--tier", "measured", "--tree", str(sp.pid), "--period", "0.1", "--min-seconds", "1.5")
                    ex = exporter_cost()
                    rd = ours(os.path.join(tmp, f"rec-d{n}-{k}"), tree, default_seconds)
                    rdn = ours(os.path.join(tmp, f"rec-dn{n}-{k}"), tree + ["--no-memory"], default_seconds)
                finally:
                    os.killpg(sp.pid, signal.SIGKILL)
                    sp.wait()
                    kill_group(un, pids_before)
                    time.sleep(0.5)
                us = 1e6 * r["self_cpu_s"] / r["samples"]
                x = {"unrelated": n, "pids_on_machine": fl["pids"], "procs_measured": r["procs_per_proc_line"],
                     "floor_measured": fl["measured"], "us_per_sample": us,
                     "scan_us_per_sample": 1e6 * rs["self_cpu_s"] / rs["samples"],
                     "floor_us": fl["cpu_ns_per_iter"] / 1e3, "ratio_floor": us / (fl["cpu_ns_per_iter"] / 1e3),
                     "exporter_us_per_scan": 1e6 * ex,
                     "default_core_pct": 100.0 * rd["self_cpu_s"] / rd["duration_s"],
                     "default_no_memory_core_pct": 100.0 * rdn["self_cpu_s"] / rdn["duration_s"],
                     "default_steady_core_pct": steady_core_pct(rd),
                     "default_no_memory_steady_core_pct": steady_core_pct(rdn),
                     "memory_rounds_read": rd["memory_rounds_read"],
                     "memory_rounds_reused": rd["memory_rounds_reused"]}
                rows.setdefault(str(n), []).append(x)
                log(f"  [{k + 1}/{repeats}] {n} unrelated ({fl['pids']} pids): child lists {us:.0f} µs/sample, "
                    f"full scan {x['scan_us_per_sample']:.0f}, measured-set floor {x['floor_us']:.0f}; "
                    f"exporter --per-process {x['exporter_us_per_scan']:.0f} µs/scan; default run "
                    f"{x['default_core_pct']:.3f}% of a core, steady {x['default_steady_core_pct']:.3f}% "
                    f"({x['default_no_memory_core_pct']:.3f}%, steady {x['default_no_memory_steady_core_pct']:.3f}% "
                    f"without the memory tier; memory rounds read {x['memory_rounds_read']}, reused "
                    f"{x['memory_rounds_reused']})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {n: {key: bl.stats([r[key] for r in rs]) for key in rs[0]} for n, rs in rows.items()}
    base = summary.get("0", {}).get("us_per_sample", {}).get("median")
    for n, x in summary.items():
        x["vs_none"] = (x["us_per_sample"]["median"] / base) if base else float("nan")
    return {"summary": summary, "runs": rows}


def unrelated_table(res: dict) -> str:
    lines = ["| unrelated processes | pids on the machine | processes measured | ours (child lists), µs per "
             "process sample | ours / ours with none | measured-set floor, µs | ours / floor | full scan of the same "
             "tree, µs | exporter --per-process (whole machine, full scan), µs per scan | default `run`, % of a core "
             "(whole run) | default `run`, steady, % of a core | default `run --no-memory`, % of a core (whole run) | "
             "default `run --no-memory`, steady | memory rounds read / reused |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, x in res["summary"].items():
        lines.append(f"| {int(n):,} | {bl.fmt(x['pids_on_machine'], digits=4)} | {bl.fmt(x['procs_measured'], digits=4)} | "
                     f"{bl.fmt(x['us_per_sample'])} | {x['vs_none']:.2f} | {bl.fmt(x['floor_us'])} | "
                     f"{bl.fmt(x['ratio_floor'])} | {bl.fmt(x['scan_us_per_sample'])} | "
                     f"{bl.fmt(x['exporter_us_per_scan'])} | {bl.fmt(x['default_core_pct'])} | "
                     f"{bl.fmt(x['default_steady_core_pct'])} | {bl.fmt(x['default_no_memory_core_pct'])} | "
                     f"{bl.fmt(x['default_no_memory_steady_core_pct'])} | "
                     f"{bl.fmt(x['memory_rounds_read'], digits=3)} / {bl.fmt(x['memory_rounds_reused'], digits=3)} |")
    return "\n".join(lines) + "\n"


def table(res: dict) -> str:
    s = res["summary"]
    lines = ["| measured set | processes measured | pids on the machine | our CPU per sample, µs | "
             "periodic floor, µs | ours / periodic floor | tight floor, µs | µs per pid on the machine |",
             "|---|---|---|---|---|---|---|---|"]
    for n, x in s.items():
        if n == "counter":
            continue
        per = x["us_per_sample"]["median"] / max(1, x["pids_on_machine"]["median"])
        lines.append(f"| {'--pid 1 (whole machine)' if n == 'machine' else f'{n} children'} | "
                     f"{bl.fmt(x['procs_measured'], digits=4)} | {bl.fmt(x['pids_on_machine'], digits=4)} | "
                     f"{bl.fmt(x['us_per_sample'])} | {bl.fmt(x['floor_us'])} | {bl.fmt(x['ratio'])} | "
                     f"{bl.fmt(x['tight_floor_us'])} | {per:.3g} |")
    t = "\n".join(lines) + "\n"
    if "counter" in s:
        c = s["counter"]
        t += ("\n| counter tier (period 0.01 s, fake RAPL, "
              f"{c['zones']['median']:g} zones; the floor also reads /proc/stat) | ours, µs/sample | periodic floor, µs | "
              "ours / periodic floor | tight floor (reads only), µs | ours / tight floor | wake-up alone, µs | "
              "tight + line write + thread clock, µs | periodic + line write + thread clock, µs |\n"
              "|---|---|---|---|---|---|---|---|---|\n"
              f"| | {bl.fmt(c['us_per_sample'])} | {bl.fmt(c['floor_us'])} | {bl.fmt(c['ratio'])} | "
              f"{bl.fmt(c['tight_floor_us'])} | {bl.fmt(c['ratio_tight'])} | {bl.fmt(c['wake_us'])} | "
              f"{bl.fmt(c.get('tight_write_us', {}))} | {bl.fmt(c.get('periodic_write_us', {}))} |\n")
    return t


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--unrelated", action="store_true",
                    help="only the table against unrelated processes (0, 1000, 2000, 3000, 5000)")
    ap.add_argument("--counts", type=int, nargs="*", default=[0, 1000, 2000, 3000, 5000])
    ap.add_argument("--default-seconds", type=float, default=75.0,
                    help="length of the default runs (--unrelated; at least 20 for a steady state)")
    ap.add_argument("--json-out", help="also write the results as JSON here")
    a = ap.parse_args()
    if a.unrelated:
        res = unrelated(a.repeats, a.seconds, counts=tuple(a.counts), default_seconds=a.default_seconds)
        print(unrelated_table(res))
    else:
        res = run(a.repeats, a.seconds)
        print(table(res))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)
