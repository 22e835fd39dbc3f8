#!/usr/bin/env python3
"""report — runs every benchmark and writes bench/results/<date>-<host>.md/.json.

Called by bench/run.sh (which builds wattmeter, bench/floor.c and the peers'
venv first). --quick is a smoke version of about two minutes: short runs, one
repeat, fewer configurations; its figures are not for quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import overhead  # noqa: E402
import rate  # noqa: E402
import scale  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="results base path (default bench/results/<date>-<host>)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["overhead", "rate", "scale", "peers"])
    a = ap.parse_args()
    q = a.quick
    t_start = time.monotonic()
    m = bl.machine()
    host = socket.gethostname()
    base = a.out or os.path.join(bl.RESULTS, f"{bl.stamp()}-{host}" + ("-quick" if q else ""))
    data: dict = {"machine": m, "quick": q, "wattmeter": bl.wattmeter_bin()}
    md = [f"# wattmeter benchmarks ({m['date_utc']}){' — QUICK smoke run, not for quoting' if q else ''}\n",
          bl.machine_md(m),
          f"- `bash bench/run.sh{' --quick' if q else ''}`; wattmeter CLI `{bl.wattmeter_bin()}`; every figure is "
          "the median (min–max) over the repeats; the machine is shared and noisy\n"]

    # ---- 1. peers --------------------------------------------------------------------------
    if "peers" not in a.skip:
        log("== peers (overhead vs CodeCarbon, Zeus, carbontracker, eco2AI)")
        pj = base + ".peers.json"
        args = ["--seconds", "3", "--repeats", "1", "--periods", "1"] if q else ["--seconds", "12", "--repeats", "3"]
        rc = subprocess.call([sys.executable, os.path.join(bl.BENCH, "peers.py"), *args, "--json-out", pj])
        if rc == 0 and os.path.exists(pj):
            with open(pj) as f:
                data["peers"] = json.load(f)
            os.unlink(pj)
        else:
            data["peers"] = {"summary": {}, "errors": {"peers.py": f"exit {rc}"}, "markdown": "peers.py failed\n"}
        inst = os.path.join(bl.REPO, "build-bench", "peers-install-failures.txt")
        fails = open(inst).read().strip() if os.path.exists(inst) else ""
        p = data["peers"]
        md.append("\n## 1. Overhead vs peers\n\n"
                  f"Workload: `bench/peer_driver.py`, 2 worker processes burning CPU for "
                  f"{'3' if q else '12'} s; every tool reads the same fake RAPL tree at `/sys/class/powercap` "
                  "(private mount namespace). Running cost = CPU of the tool while the workers run, per "
                  "minute; start+stop+exit = import, set-up, stop and exit; whole run per minute = all of it "
                  "over this run's length. Ratios are the tool's median over wattmeter CLI's at the same "
                  "period. Method: bench/README.md.\n\n" + p.get("markdown", ""))
        if fails:
            md.append(f"\nInstall failures: {fails}\n")
        if p.get("errors"):
            md.append("\nFailed peers (first lines of the error):\n\n" +
                      "".join(f"- {k}: `{v.splitlines()[0][:200]}`\n" for k, v in p["errors"].items()))

    # ---- 2. rate ---------------------------------------------------------------------------
    if "rate" not in a.skip:
        log("== sampling rate and jitter")
        r = rate.run(1 if q else 3, 1.5 if q else 4.0, periods=[0.1, 0.01, 0.001] if q else rate.PERIODS,
                     loads=("busy", "idle"), log=log)
        data["rate"] = r
        md.append("\n## 2. Sampling rate and jitter\n\n"
                  "`wattmeter run --sysfs-root FAKE --period P` (process tier 1 s, memory 10 s) around "
                  "`bench/workload.py` (busy: a Python busy loop + 3 light children; idle: all sleeping); "
                  "jitter = |interval − P| between consecutive `t_s`.\n\n" + rate.table(r) +
                  f"\nHighest rate sustained (≥ 95% of nominal, < 1% late): busy machine "
                  f"{rate.highest_sustained(r, 'busy')} s, idle machine {rate.highest_sustained(r, 'idle')} s.\n")

    # ---- 3 + 5. scale and floor ------------------------------------------------------------------
    if "scale" not in a.skip:
        log("== scale with the number of processes, and the floor")
        s = scale.run(1 if q else 3, 1.5 if q else 4.0, ns=(10, 100) if q else (10, 100, 1000), log=log)
        data["scale"] = s
        md.append("\n## 3. Scale (process tier) and 5. floor\n\n"
                  "`wattmeter run --period 0.1 --proc-period 0.1 --no-memory --pid SPAWNER -- sleep S`; "
                  "per sample = self.cpu_s / samples (every sample is a process-tier sample). Floor: "
                  "`bench/floor.c` doing only the reads (readdir of /proc, open+pread+close of every "
                  "<pid>/stat, /proc/stat, /proc/meminfo), at the same period (periodic) and flat out "
                  "(tight).\n\n" + scale.table(s))

    # ---- 4. size (and the overhead at the defaults) --------------------------------------------
    if "overhead" not in a.skip:
        log("== overhead at the defaults and recording size")
        raw, res = overhead.run(1 if q else 5, 2.0 if q else 6.0, log=log)
        data["overhead"] = {"summary": res, "runs": raw}
        md.append("\n## 4. Size, and cost at the defaults\n\n"
                  "`bench/overhead.py` (see its own results file for the method): `wattmeter run` of a busy "
                  "Python loop + 3 light children.\n\n" + overhead.table(res))

    # ---- 6. targets -------------------------------------------------------------------------------
    md.append("\n## 6. Targets (printed, not asserted)\n\n" + targets(data) + "\n")
    md.append(f"\nTotal bench time: {time.monotonic() - t_start:.0f} s.\n")
    text = "".join(md)
    bl.write_results(base, text, data)
    print(text)
    print(f"wrote {base}.md and .json")
    return 0


def targets(data: dict) -> str:
    out = ["| target | figure | met? |", "|---|---|---|"]

    def row(name: str, fig: str, ok) -> None:
        out.append(f"| {name} | {fig} | {'n/a' if ok is None else ('yes' if ok else 'NO')} |")

    ps = data.get("peers", {}).get("summary", {})
    for p in ("1", "0.1"):
        ours = ps.get(f"wattmeter-cli@{p}")
        peers = {k: v for k, v in ps.items() if not k.startswith("wattmeter") and (k.endswith(f"@{p}") or "@" not in k)}
        if not ours or not peers:
            continue
        for field, label in (("running_s_per_min", "while running"), ("total_s_per_min", "whole run")):
            lightest = min(peers, key=lambda k: peers[k][field]["median"])
            ratio = peers[lightest][field]["median"] / ours[field]["median"]
            row(f"≥ 50× less CPU than the lightest peer, period {p} s, {label}",
                f"lightest {lightest}: {ratio:.3g}× ours", ratio >= 50)
    ov = data.get("overhead", {}).get("summary", {})
    d = ov.get("rapl, defaults (0.5 s / 1 s / 10 s)")
    if d:
        row("< 0.05% of one core at the defaults (sampler)", f"{bl.fmt(d['sampler_pct_core'])} %",
            d["sampler_pct_core"]["median"] < 0.05)
        row("< 0.05% of one core at the defaults (whole process, incl. start/exit)",
            f"{bl.fmt(d['process_pct_core'])} % over a short run", d["process_pct_core"]["median"] < 0.05)
    sc = data.get("scale", {}).get("summary", {})
    if "counter" in sc:
        c = sc["counter"]
        row("within 2× of the floor: counter tier (vs periodic floor)", f"{bl.fmt(c['ratio'])}×",
            c["ratio"]["median"] <= 2)
        row("within 2× of the floor: counter tier (vs tight floor, reads only)", f"{bl.fmt(c['ratio_tight'])}×",
            c["ratio_tight"]["median"] <= 2)
    for n in ("100", "1000", "machine"):
        if n in sc:
            row(f"within 2× of the floor: process tier, {n} (vs periodic floor)", f"{bl.fmt(sc[n]['ratio'])}×",
                sc[n]["ratio"]["median"] <= 2)
    rs = data.get("rate", {}).get("summary", {})
    for ld in ("busy", "idle"):
        x = rs.get(f"{ld}@0.001")
        if x:
            ok = x["p99_us"]["median"] < 1000 and x["rate_hz"]["median"] >= 950
            row(f"1 kHz with p99 jitter < 1 ms ({ld} machine)",
                f"{bl.fmt(x['rate_hz'], digits=4)} Hz, p99 {bl.fmt(x['p99_us'])} µs", ok)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
