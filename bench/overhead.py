#!/usr/bin/env python3
"""overhead — what the wattmeter CLI costs while it measures a busy job.

For each configuration (RAPL from a fake powercap tree, or the modelled path
without RAPL; the defaults (counters 0.5 s, processes 1 s, memory 10 s), and
counter periods 0.1 s and 0.01 s with the other tiers at their defaults) it runs, --repeats times,

    wattmeter run -q -o DIR [--sysfs-root FAKE] --period P -- python3 bench/workload.py \
        --seconds S --children 3 --child-mode light --main busy

(a Python busy loop plus three children doing 1 ms of work every 10 ms) and
records, from two sources of truth:

  the recording: self.cpu_s (the sampler thread's CPU time) and samples from
    meta.json, bytes of samples.jsonl;
  the parent: os.wait4 rusage of the wattmeter process minus the workload's
    own self-reported rusage (taken just before it os._exit()s), i.e. the
    whole wattmeter process including exec, loading, probing, fork and exit;
    its peak RSS from VmHWM polled in /proc/<pid>/status.

Configurations are interleaved (round robin) so that drifting background
load spreads over all of them. Prints the table and writes
bench/results/overhead-<date>-<host>.md and .json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

REAL_MAX_RANGE_UJ = 262143328850  # what Intel packages report; no wrap warning

CONFIGS = [
    # name, rapl?, wattmeter args
    ("rapl, defaults (0.5 s / 1 s / 10 s)", True, []),
    ("rapl, period 0.1 s", True, ["--period", "0.1"]),
    ("rapl, period 0.01 s", True, ["--period", "0.01"]),
    ("modelled, defaults (0.5 s / 1 s / 10 s)", False, []),
    ("modelled, period 0.01 s", False, ["--period", "0.01"]),
]


def summarise(runs):
    per = {
        "sampler_pct_core": [100 * r["self_cpu_s"] / r["duration_s"] for r in runs],
        "sampler_us_per_sample": [1e6 * r["self_cpu_s"] / r["samples"] for r in runs],
        "process_cpu_ms": [1e3 * r["wm_cpu_s"] for r in runs],
        "process_pct_core": [100 * r["wm_cpu_s"] / r["duration_s"] for r in runs],
        "setup_ms": [1e3 * (r["wm_cpu_s"] - r["self_cpu_s"]) for r in runs],
        "hwm_mib": [r["wm_hwm_kb"] / 1024 for r in runs],
        "bytes_per_sample": [r["samples_bytes"] / r["samples"] for r in runs],
        "mb_per_hour": [r["samples_bytes"] / r["duration_s"] * 3600 / 1e6 for r in runs],
        "samples": [r["samples"] for r in runs],
        "duration_s": [r["duration_s"] for r in runs],
    }
    return {k: bl.stats(v) for k, v in per.items()}


def table(results) -> str:
    hdr = ("| configuration | sampler CPU, % of one core | sampler CPU per sample, µs | "
           "whole process CPU, ms per run | whole process, % of one core | start+exit CPU, ms | "
           "peak RSS (VmHWM), MiB | bytes/sample | MB/hour | samples |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, s in results.items():
        rows.append(f"| {name} | {bl.fmt(s['sampler_pct_core'])} | {bl.fmt(s['sampler_us_per_sample'])} | "
                    f"{bl.fmt(s['process_cpu_ms'])} | {bl.fmt(s['process_pct_core'])} | {bl.fmt(s['setup_ms'])} | "
                    f"{bl.fmt(s['hwm_mib'])} | {bl.fmt(s['bytes_per_sample'], digits=4)} | "
                    f"{bl.fmt(s['mb_per_hour'])} | {bl.fmt(s['samples'], digits=4)} |")
    return hdr + "\n".join(rows) + "\n"


def run(repeats: int, seconds: float, configs=CONFIGS, log=print):
    tmp = tempfile.mkdtemp(prefix="wm-overhead-")
    raw = {name: [] for name, _, _ in configs}
    try:
        with bl.FakeRaplProc(os.path.join(tmp, "sys"), max_range_uj=REAL_MAX_RANGE_UJ) as fake:
            for k in range(repeats):
                for name, rapl, args in configs:
                    out = os.path.join(tmp, f"rec-{k}-{len(raw[name])}-{abs(hash(name))}")
                    wm = list(args) + (["--sysfs-root", fake.root] if rapl else [])
                    r = bl.run_cli(out, wm, seconds)
                    want = "measured" if rapl else "modeled"
                    if r["methods"].get("cpu") != want:
                        raise RuntimeError(f"{name}: cpu method {r['methods']} (wanted {want})")
                    r.pop("t_s")
                    raw[name].append(r)
                    shutil.rmtree(out)
                    log(f"  [{k + 1}/{repeats}] {name}: sampler {1e3 * r['self_cpu_s']:.2f} ms, "
                        f"process {1e3 * r['wm_cpu_s']:.1f} ms, {r['samples']} samples, "
                        f"HWM {r['wm_hwm_kb']} kB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return raw, {name: summarise(runs) for name, runs in raw.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0, help="workload wall time per run")
    ap.add_argument("--out", help="results base path (default bench/results/overhead-<date>-<host>)")
    a = ap.parse_args()
    m = bl.machine()
    print(f"wattmeter: {bl.wattmeter_bin()}; {a.repeats} repeats x {len(CONFIGS)} configs x {a.seconds} s")
    raw, res = run(a.repeats, a.seconds)
    md = (f"# wattmeter overhead ({m['date_utc']})\n\n" + bl.machine_md(m) +
          f"- `{bl.wattmeter_bin()} run`, workload: `bench/workload.py --seconds {a.seconds} --children 3 "
          f"--child-mode light --main busy`; {a.repeats} repeats per configuration, interleaved\n"
          "- figures: median (min–max) over the repeats\n\n" + table(res) +
          "\nSampler CPU = `self.cpu_s` of meta.json (the sampler thread's CPU time) over the "
          "recording's duration; per sample = `self.cpu_s / samples`. Whole process = wait4 rusage "
          "of the `wattmeter` process minus the workload's own rusage (self + children, taken just "
          "before it `os._exit`s): exec, loading, probing, forking the command, the sampler, the "
          "final meta.json and summary, exit. start+exit = whole process − sampler. Peak RSS = "
          "VmHWM of the wattmeter process, polled every 0.1 s (wait4's ru_maxrss is the max over "
          "the process and the children it reaped, i.e. the Python workload's). Bytes = size of "
          "samples.jsonl (meta.json, a few kB, is not counted).\n")
    print()
    print(table(res))
    base = a.out or os.path.join(bl.RESULTS, f"overhead-{bl.stamp()}-{socket.gethostname()}")
    bl.write_results(base, md, {"machine": m, "summary": res, "runs": raw,
                                "args": {"repeats": a.repeats, "seconds": a.seconds}})
    print(f"wrote {base}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
