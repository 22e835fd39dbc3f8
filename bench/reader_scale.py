#!/usr/bin/env python3
"""The recording reader at scale: `wattmeter report --json` on recordings
with many processes, many lines, and one huge line, with its time and peak
memory (RSS).

    python3 bench/reader_scale.py [--procs 1000 10000 100000] [--before BIN]

- processes: N processes, 100 per process-tier line (each new in new_procs,
  then in procs), over devices cpu (attributed), dram, psys (not attributed:
  the shape where choosing each process's keys scanned every process, for
  every process: 110.7 s at 100,000 before);
- lines: 1,000,000 sample lines of about 300 bytes (a 320 MB file);
- a 2 GiB sparse file of NUL bytes without a newline (before: 2.1 GB RSS).

--before BIN also runs an older wattmeter binary on the same files (built,
e.g., from `git archive c118a74`), for the before/after figure. Writes
bench/results/reader-<date>-<host>.md and .json. Nothing is asserted.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

DEVICES = [{"name": "cpu", "kind": "cpu", "method": "measured", "source": "rapl-powercap", "attribution": "cpu-ticks"},
           {"name": "dram", "kind": "dram", "method": "measured", "source": "rapl-powercap", "attribution": "memory"},
           {"name": "psys", "kind": "psys", "method": "measured", "source": "rapl-powercap", "attribution": "none"}]


def meta(duration_s: float) -> Dict[str, object]:
    return {"schema": "wattmeter.recording", "schema_version": 1, "command": ["bench"], "period_s": 0.1,
            "devices": DEVICES, "duration_s": duration_s, "exit_status": 0, "complete": True}


def write_procs(d: str, n: int) -> None:
    os.makedirs(d)
    per_line = 100
    lines = (n + per_line - 1) // per_line
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta(float(lines)), f)
    with open(os.path.join(d, "samples.jsonl"), "w") as f:
        f.write(json.dumps({"t_s": 0, "energy_j": {"cpu": 0, "dram": 0, "psys": 0}}) + "\n")
        for i in range(lines):
            t = float(i + 1)
            pids = range(1000 + i * per_line, 1000 + min(n, (i + 1) * per_line))
            f.write(json.dumps({
                "t_s": t, "energy_j": {"cpu": 50 * t, "dram": 5 * t, "psys": 80 * t},
                "power_w": {"cpu": 50, "dram": 5, "psys": 80},
                "attributed_j": {"cpu": 40 * t, "dram": 4 * t},
                "procs": [{"pid": p, "ppid": 1, "comm": "worker", "cpu_s": 0.01,
                           "energy_j": {"cpu": 0.4, "dram": 0.04}} for p in pids],
                "new_procs": [{"pid": p, "ppid": 1, "cmdline": "worker --rank %d" % p} for p in pids],
            }, separators=(",", ":")) + "\n")


def write_lines(d: str, n: int) -> None:
    os.makedirs(d)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta(n * 0.1), f)
    with open(os.path.join(d, "samples.jsonl"), "w") as f:
        f.write('{"t_s":0,"energy_j":{"cpu":0,"dram":0,"psys":0}}\n')
        for i in range(1, n + 1):
            t = round(i * 0.1, 6)
            f.write('{"t_s":%s,"energy_j":{"cpu":%.6f,"dram":%.6f,"psys":%.6f},'
                    '"power_w":{"cpu":25,"dram":2.5,"psys":40},"cpu_util":0.5,"self_cpu_s":%.6f,'
                    '"zones_energy_j":{"package-0":%.6f,"package-0/core":%.6f,"package-0/dram":%.6f,"psys":%.6f}}\n'
                    % (t, 2.5 * t, 0.25 * t, 4 * t, 1e-4 * i, 2.5 * t, 1.9 * t, 0.25 * t, 4 * t))


def write_huge(d: str) -> None:
    os.makedirs(d)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta(1.0), f)
    with open(os.path.join(d, "samples.jsonl"), "wb") as f:
        f.truncate(2 << 30)


def measure(binary: str, d: str, timeout: float) -> Dict[str, object]:
    """Time and peak RSS of `binary report --json d`, in a fresh child."""
    code = ("import resource, subprocess, sys, time\n"
            "t = time.monotonic()\n"
            "try:\n"
            "    p = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,"
            " timeout=float(sys.argv[1]))\n"
            "    rc, err = p.returncode, p.stderr.strip()[:160]\n"
            "except subprocess.TimeoutExpired:\n"
            "    rc, err = 'timeout', ''\n"
            "print(repr((rc, time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, err)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(timeout), binary, "report", d, "--json"],
                         capture_output=True, text=True).stdout
    rc, secs, rss_kb, err = eval(out)  # our own repr
    return {"rc": rc, "s": round(secs, 3), "rss_mb": round(rss_kb / 1024, 1), "error": err}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--before", help="an older wattmeter binary to run on the same files")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    binary = benchlib.wattmeter_bin()
    m = benchlib.machine()
    work = tempfile.mkdtemp(prefix="wm-reader-bench-")
    rows: List[Dict[str, object]] = []
    try:
        cases = [("%d processes" % n, lambda d, n=n: write_procs(d, n)) for n in a.procs]
        cases.append(("%d lines" % a.lines, lambda d: write_lines(d, a.lines)))
        cases.append(("2 GiB of NUL bytes, no newline", write_huge))
        for i, (name, make) in enumerate(cases):
            d = os.path.join(work, "rec%d" % i)
            make(d)
            size = os.path.getsize(os.path.join(d, "samples.jsonl"))
            row: Dict[str, object] = {"case": name, "samples_bytes": size, "now": measure(binary, d, a.timeout)}
            if a.before:
                row["before"] = measure(a.before, d, a.timeout)
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(d)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def cell(r: Optional[Dict[str, object]]) -> str:
        if not r:
            return "-"
        ok = "" if r["rc"] == 0 else " (exit %s)" % r["rc"]
        return "%.2f s, %.0f MB%s" % (r["s"], r["rss_mb"], ok)

    md = (f"# Recording reader at scale — {benchlib.stamp()}\n\n{benchlib.machine_md(m)}"
          f"- `python3 bench/reader_scale.py{' --before ' + a.before if a.before else ''}`: "
          f"`wattmeter report --json` once per case ({binary}); time is wall clock of the command, memory its "
          f"peak RSS; one run each (figures from a shared machine, not medians)\n\n"
          f"| recording | samples.jsonl | now | {'before' if a.before else ''} |\n|---|---|---|---|\n")
    for r in rows:
        md += (f"| {r['case']} | {r['samples_bytes'] / 1e6:,.0f} MB | {cell(r['now'])} | "
               f"{cell(r.get('before')) if a.before else ''} |\n")
    md += ("\nThe 2 GiB file is refused (exit 1: its first line is over the 32 MiB bound) after reading 32 MiB "
           "in 64 kB chunks. Memory for a recording is 8 bytes per column per line (4 + 3 per device), "
           "whatever the lines hold, plus the processes seen.\n")
    benchlib.write_results(os.path.join(benchlib.RESULTS, f"reader-{benchlib.stamp()}-{m['host']}"), md,
                           {"machine": m, "binary": binary, "before": a.before, "rows": rows})
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
