#!/usr/bin/env python3
"""Reading recordings: one parse into columns, every query from them.

    python3 bench/reader.py [--sizes hour day week] [--before BIN]

Generates recordings at 1 Hz of one hour, one day and one week (the
writer's line shape; cpu/dram/psys counters at 50/10/70 W, so the truth of
every total is known; every 10th line a process-tier line with 4
processes) and measures on each, once (a shared machine: figures, not
medians):

- `wattmeter report` text, `--json`, `--html` (wall clock of the command);
- Python: `wattmeter.load()`, then `total("cpu")`, a window
  `total("cpu", start=1000, end=T/3)`, `average("cpu_util")`, `max("cpu")`
  (each the best of 5 calls), `to_pandas()`;
- against `pandas.read_json(lines=True)`, `polars.read_ndjson` (if
  installed), a loop of `json.loads` (and `orjson.loads` if installed), and
  reading the file's bytes.

Checks every total against the generator's truth (exits 1 if one is off).
Writes bench/results/reader-columns-<date>-<host>.md and .json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

RATES_W = {"cpu": 50.0, "dram": 10.0, "psys": 70.0}
SIZES = {"hour": 3600, "day": 86400, "week": 604800}
DEVICES = [{"name": "cpu", "kind": "cpu", "method": "measured", "source": "rapl-powercap", "attribution": "cpu-ticks"},
           {"name": "dram", "kind": "dram", "method": "measured", "source": "rapl-powercap", "attribution": "memory"},
           {"name": "psys", "kind": "psys", "method": "measured", "source": "rapl-powercap", "attribution": "none"}]


def write_recording(d: str, n: int) -> None:
    os.makedirs(d)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"schema": "wattmeter.recording", "schema_version": 1, "command": ["bench"], "period_s": 1.0,
                   "proc_period_s": 10.0, "devices": DEVICES, "duration_s": float(n), "exit_status": 0,
                   "complete": True, "start_utc": "2026-12-03T00:00:00.000Z"}, f)
    pids = [1001, 1002, 1003, 1004]
    with open(os.path.join(d, "samples.jsonl"), "w") as f:
        f.write('{"t_s":0.000000,"energy_j":{"cpu":0.000000,"dram":0.000000,"psys":0.000000}}\n')
        buf: List[str] = []
        for i in range(1, n + 1):
            t = float(i)
            line = ('{"t_s":%.6f,"energy_j":{"cpu":%.6f,"dram":%.6f,"psys":%.6f},'
                    '"power_w":{"cpu":50.000000,"dram":10.000000,"psys":70.000000},'
                    '"cpu_util":0.4%02d,"mem_used_bytes":%d' % (t, 50 * t, 10 * t, 70 * t, i % 100,
                                                               8000000000 + (i % 1000) * 4096))
            if i % 10 == 0:
                line += (',"attributed_j":{"cpu":%.6f,"dram":%.6f},"procs":[' % (40 * t, 8 * t)
                         + ",".join('{"pid":%d,"ppid":1,"comm":"worker","cpu_s":%.6f,"cpu_share":0.25,'
                                    '"rss_bytes":%d,"energy_j":{"cpu":%.6f,"dram":%.6f}}'
                                    % (p, 2.5, 1 << 30, 10 * t, 2 * t) for p in pids) + "]")
                if i == 10:
                    line += ',"new_procs":[' + ",".join('{"pid":%d,"ppid":1,"cmdline":"worker --rank %d"}'
                                                       % (p, p) for p in pids) + "]"
            buf.append(line + "}\n")
            if len(buf) >= 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))


def timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    t = time.perf_counter()
    v = fn()
    return time.perf_counter() - t, v


def best_of(fn: Callable[[], Any], n: int = 5) -> Tuple[float, Any]:
    best, v = float("inf"), None
    for _ in range(n):
        s, v = timed(fn)
        best = min(best, s)
    return best, v


def run_cmd(argv: List[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


# Python measurements in a fresh interpreter each (no shared caches).
PY_CODE = r'''
import json, sys, time
d, what = sys.argv[1], sys.argv[2]
out = {}
def t(fn):
    s = time.perf_counter(); v = fn(); return time.perf_counter() - s, v
def best(fn, n=5):
    b, v = float("inf"), None
    for _ in range(n):
        s, v = t(fn); b = min(b, s)
    return b, v
f = d + "/samples.jsonl"
if what == "wattmeter":
    import wattmeter
    import pandas  # imported before the clock starts: to_pandas() is timed, not the import
    out["load_s"], r = t(lambda: wattmeter.load(d))
    out["total_s"], out["total_cpu_j"] = best(lambda: r.total("cpu"))
    end = r.duration_s / 3
    out["window_s"], out["window_cpu_j"] = best(lambda: r.total("cpu", start=1000, end=end))
    out["window_end_s"] = end
    out["average_s"], out["avg_cpu_util"] = best(lambda: r.average("cpu_util"))
    out["max_s"], out["max_cpu_w"] = best(lambda: r.max("cpu"))
    out["per_process_s"], pp = best(lambda: r.per_process(start=1000, end=end))
    out["to_pandas_s"], df = t(lambda: r.to_pandas())
    out["frame_rows"] = len(df)
elif what == "read_bytes":
    out["s"], _ = t(lambda: open(f, "rb").read())
elif what == "json.loads":
    def loop():
        with open(f, "rb") as fh:
            return sum(1 for line in fh if json.loads(line))
    out["s"], _ = t(loop)
elif what == "orjson.loads":
    import orjson
    def loop():
        with open(f, "rb") as fh:
            return sum(1 for line in fh if orjson.loads(line))
    out["s"], _ = t(loop)
elif what == "pandas.read_json":
    import pandas
    out["s"], _ = t(lambda: pandas.read_json(f, lines=True))
elif what == "polars.read_ndjson":
    import polars
    out["s"], _ = t(lambda: polars.read_ndjson(f, infer_schema_length=None))
print(json.dumps(out))
'''


def py_measure(d: str, what: str) -> Dict[str, Any]:
    p = subprocess.run([sys.executable, "-c", PY_CODE, d, what], capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1][:200] if p.stderr.strip() else "exit %d" % p.returncode}
    out: Dict[str, Any] = json.loads(p.stdout)
    return out


def have(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", "import " + module], capture_output=True).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["hour", "day", "week"], choices=list(SIZES))
    ap.add_argument("--before", help="an older wattmeter binary: its `report` on the same files too")
    a = ap.parse_args()
    binary = benchlib.wattmeter_bin()
    m = benchlib.machine()
    work = tempfile.mkdtemp(prefix="wm-reader-columns-")
    rows: List[Dict[str, Any]] = []
    ok = True
    try:
        for size in a.sizes:
            n = SIZES[size]
            d = os.path.join(work, size)
            gen_s, _ = timed(lambda: write_recording(d, n))
            nbytes = os.path.getsize(os.path.join(d, "samples.jsonl"))
            row: Dict[str, Any] = {"size": size, "samples": n + 1, "bytes": nbytes, "generate_s": round(gen_s, 2)}
            row["report_text_s"] = run_cmd([binary, "report", d])
            row["report_json_s"] = run_cmd([binary, "report", d, "--json"])
            row["report_html_s"] = run_cmd([binary, "report", d, "--html", os.path.join(work, size + ".html")])
            if a.before:
                row["before_report_text_s"] = run_cmd([a.before, "report", d])
            row["python"] = py_measure(d, "wattmeter")
            for what in ("read_bytes", "json.loads", "orjson.loads", "pandas.read_json", "polars.read_ndjson"):
                mod = what.split(".")[0]
                if mod in ("read_bytes", "json") or have(mod):
                    row[what] = py_measure(d, what)
            py = row["python"]
            if "error" not in py:
                want_total = RATES_W["cpu"] * n
                want_window = RATES_W["cpu"] * (int(py["window_end_s"]) - 1000)
                row["truth"] = {"total_cpu_j": want_total, "window_cpu_j": want_window}
                if abs(py["total_cpu_j"] - want_total) > 1e-6 * want_total or \
                        abs(py["window_cpu_j"] - want_window) > 1e-6 * want_total:
                    ok = False
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(d)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def s(x: Any) -> str:
        if isinstance(x, dict):
            x = x.get("s")
        if x is None:
            return "-"
        return "%.3f s" % x if x >= 0.01 else "%.1f µs" % (x * 1e6)

    md = (f"# Reading recordings: one parse into columns — {benchlib.stamp()}\n\n{benchlib.machine_md(m)}"
          f"- `python3 bench/reader.py --sizes {' '.join(a.sizes)}`: synthetic recordings at 1 Hz (cpu/dram/psys "
          f"at 50/10/70 W, every 10th line with 4 processes); one run each on a shared machine; queries are the "
          f"best of 5 calls after load()\n\n")
    md += "| | " + " | ".join(r["size"] for r in rows) + " |\n|---|" + "---|" * len(rows) + "\n"

    def line(label: str, f: Callable[[Dict[str, Any]], Any]) -> None:
        nonlocal md
        md += f"| {label} | " + " | ".join(f(r) for r in rows) + " |\n"

    line("samples.jsonl", lambda r: "%d lines, %.1f MB" % (r["samples"], r["bytes"] / 1e6))
    line("`wattmeter report` (text)", lambda r: "%s (%.0f MB/s)" % (s(r["report_text_s"]),
                                                                  r["bytes"] / 1e6 / r["report_text_s"]))
    if a.before:
        line("`report` (text), before", lambda r: s(r.get("before_report_text_s")))
    line("`report --json`", lambda r: s(r["report_json_s"]))
    line("`report --html`", lambda r: s(r["report_html_s"]))
    for k, label in (("load_s", "`wattmeter.load()`"), ("total_s", "then `total(\"cpu\")`"),
                     ("window_s", "then `total(\"cpu\", start=1000, end=T/3)`"),
                     ("average_s", "then `average(\"cpu_util\")`"), ("max_s", "then `max(\"cpu\")`"),
                     ("per_process_s", "then `per_process(1000, T/3)`"), ("to_pandas_s", "then `to_pandas()`")):
        line(label, lambda r, k=k: s(r["python"].get(k)))
    for what in ("pandas.read_json", "polars.read_ndjson", "json.loads", "orjson.loads", "read_bytes"):
        label = {"read_bytes": "reading the file's bytes"}.get(what, f"`{what}`" + (" loop" if "loads" in what else ""))
        line(label, lambda r, w=what: s(r.get(w)) if isinstance(r.get(w), dict) and "s" in r[w] else "-")
    line("report vs pandas.read_json", lambda r: "%.1f×" % (r["pandas.read_json"]["s"] / r["report_text_s"])
         if "s" in r.get("pandas.read_json", {}) else "-")
    line("report vs polars.read_ndjson", lambda r: "%.1f×" % (r["polars.read_ndjson"]["s"] / r["report_text_s"])
         if "s" in r.get("polars.read_ndjson", {}) else "-")
    line("totals = truth (50 W × span)", lambda r: "yes" if r.get("truth") and
         abs(r["python"]["total_cpu_j"] - r["truth"]["total_cpu_j"]) < 1e-3 else "NO")
    benchlib.write_results(os.path.join(benchlib.RESULTS, f"reader-columns-{benchlib.stamp()}-{m['host']}"), md,
                           {"machine": m, "binary": binary, "rows": rows})
    print(md)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
