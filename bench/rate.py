#!/usr/bin/env python3
"""rate — how fast the counter tier samples, and how steadily.

For each period (0.1 s = 10 Hz, 0.01 s = 100 Hz, 0.001 s = 1 kHz, and the
smallest allowed, 0.0005 s) it runs, --repeats times,

    wattmeter run -q --sysfs-root FAKE --period P -- python3 bench/workload.py \
        --seconds S --children 3 --child-mode light --main busy

(process tier at its default 1 s, memory tier 5 s: as a user would run it,
under a busy job), and again with an idle workload (--main sleep
--child-mode sleep) to tell the sampler's jitter from the scheduler's and reads the recording's t_s: achieved rate = samples /
duration; jitter = |interval − P| over consecutive samples (p50, p99, max);
late = share of intervals longer than 1.5 P (a skipped deadline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

PERIODS = [0.1, 0.01, 0.001, 0.0005]


LOADS = {"busy": {"main_mode": "busy", "child_mode": "light"},
         "idle": {"main_mode": "sleep", "child_mode": "sleep"}}


def one(fake_root: str, period: float, seconds: float, tmp: str, load: str = "busy") -> dict:
    out = os.path.join(tmp, f"rec-{period}")
    r = bl.run_cli(out, ["--sysfs-root", fake_root, "--period", str(period)], seconds, **LOADS[load])
    shutil.rmtree(out, ignore_errors=True)
    t = r["t_s"]
    iv = [b - a for a, b in zip(t[1:-1], t[2:-1])]  # skip the baseline and the stop sample
    jit = [abs(x - period) for x in iv]
    return {
        "rate_hz": (len(t) - 1) / t[-1] if t[-1] > 0 else 0.0,
        "nominal_hz": 1 / period,
        "p50_us": 1e6 * bl.percentile(jit, 50),
        "p99_us": 1e6 * bl.percentile(jit, 99),
        "max_us": 1e6 * max(jit) if jit else float("nan"),
        "late_pct": 100 * sum(1 for x in iv if x > 1.5 * period) / max(1, len(iv)),
        "sampler_pct_core": 100 * r["self_cpu_s"] / r["duration_s"],
        "us_per_sample": 1e6 * r["self_cpu_s"] / r["samples"],
        "samples": r["samples"],
    }


def run(repeats: int, seconds: float, periods=PERIODS, loads=("busy", "idle"), log=print) -> dict:
    tmp = tempfile.mkdtemp(prefix="wm-rate-")
    raw = {(ld, p): [] for ld in loads for p in periods}
    try:
        with bl.FakeRaplProc(os.path.join(tmp, "sys"), max_range_uj=262143328850) as fake:
            for k in range(repeats):
                for ld, p in raw:
                    r = one(fake.root, p, seconds, tmp, ld)
                    raw[(ld, p)].append(r)
                    log(f"  [{k + 1}/{repeats}] {ld} machine, period {p:g} s: {r['rate_hz']:.1f} Hz, jitter p50 "
                        f"{r['p50_us']:.0f} µs p99 {r['p99_us']:.0f} µs, late {r['late_pct']:.2f}%")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {f"{ld}@{p:g}": {k: bl.stats([r[k] for r in rs]) for k in rs[0]} for (ld, p), rs in raw.items()}
    return {"summary": summary, "runs": {f"{ld}@{p:g}": rs for (ld, p), rs in raw.items()}}


def table(res: dict) -> str:
    s = res["summary"]
    lines = ["| machine | period | achieved rate, Hz | jitter p50, µs | jitter p99, µs | jitter max, µs | late (>1.5 P), % | "
             "sampler CPU, % of one core | CPU per sample, µs |", "|---|---|---|---|---|---|---|---|---|"]
    for key, x in s.items():
        ld, p = key.split("@")
        lines.append(f"| {ld} | {p} s ({1 / float(p):g} Hz) | {bl.fmt(x['rate_hz'], digits=4)} | {bl.fmt(x['p50_us'])} | "
                     f"{bl.fmt(x['p99_us'])} | {bl.fmt(x['max_us'])} | {bl.fmt(x['late_pct'])} | "
                     f"{bl.fmt(x['sampler_pct_core'])} | {bl.fmt(x['us_per_sample'])} |")
    return "\n".join(lines) + "\n"


def highest_sustained(res: dict, load: str = "busy") -> str:
    best = None
    for key, x in res["summary"].items():
        ld, p = key.split("@")
        if ld != load:
            continue
        if x["rate_hz"]["median"] >= 0.95 * (1 / float(p)) and x["late_pct"]["median"] < 1.0:
            if best is None or float(p) < float(best):
                best = p
    return best


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    r = run(a.repeats, a.seconds)
    print(table(r))
    print("highest sustained period (busy, idle):", highest_sustained(r), highest_sustained(r, "idle"))
