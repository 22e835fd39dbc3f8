#!/usr/bin/env python3
"""Reading recordings: one parse into columns, every query from them.

    python3 bench/reader.py [--sizes hour day week] [--before BIN]

Generates recordings at 1 Hz of one hour, one day and one week (the
writer's line shape; cpu/dram/psys counters at 50/10/70 W, so the truth of
every total is known; every 10th line a process-tier line with 4
processes) and measures on each, once (a shared machine: figures, not
medians):

- `wattmeter report` text, `--json`, `--html`: wall clock, CPU time
  (user + sys) and peak RSS of the command;
- the same `report` (text) in a memory cgroup limited to 32 MiB, less than
  the file and its columns (the streaming pass; root and cgroup v1's memory
  controller needed, else skipped);
- Python: `wattmeter.load()` (wall, CPU, and its peak RSS above the
  interpreter's, beside the bytes its columns hold), then `total("cpu")`, a
  window `total("cpu", start=1000, end=T/3)`, `average("cpu_util")`,
  `max("cpu")` (each the best of 5 calls), `to_pandas()`;
- the parse floor: bench/reader_floor.c (built here with cc), the file read
  in 1 MiB chunks and every line scanned by the reader's scanner
  (src/recording/record_scan.c) with nothing else, its read(2) time apart;
- against `pandas.read_json(lines=True)`, `polars.read_ndjson` (if
  installed), a loop of `json.loads` (and `orjson.loads` if installed), and
  reading the file's bytes (wall and CPU of each).

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


GNU_TIME = "/usr/bin/time"


def run_cmd(argv: List[str], cgroup_procs: str = "") -> Dict[str, float]:
    """Wall clock, CPU time (user + sys) and peak RSS of a command; in the
    cgroup whose cgroup.procs is given, if one is. The peak RSS is GNU
    time's (apt-get install time): a child forked from this interpreter
    would carry the interpreter's own RSS into its ru_maxrss across exec."""
    def join() -> None:
        with open(cgroup_procs, "w") as f:
            f.write(str(os.getpid()))
    fd, tf = tempfile.mkstemp(prefix="wm-reader-time-")
    os.close(fd)
    gnu_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%M", "-o", tf] + argv if gnu_time else argv
    try:
        t = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.DEVNULL, preexec_fn=join if cgroup_procs else None)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("%s: exit %d" % (" ".join(argv), os.waitstatus_to_exitcode(status)))
        with open(tf) as f:
            rss = int(f.read().split()[-1]) * 1024 if gnu_time else ru.ru_maxrss * 1024
    finally:
        os.unlink(tf)
    return {"s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "rss_bytes": rss}


MEMCG_LIMIT = 32 << 20


def run_limited(argv: List[str]) -> Dict[str, Any]:
    """argv in a fresh cgroup v1 memory cgroup limited to MEMCG_LIMIT."""
    root = "/sys/fs/cgroup/memory"
    if os.geteuid() != 0 or not os.access(root, os.W_OK):
        return {"skipped": "needs root and cgroup v1's memory controller at " + root}
    d = os.path.join(root, "wm-bench-reader-%d" % os.getpid())
    os.mkdir(d)
    try:
        with open(os.path.join(d, "memory.limit_in_bytes"), "w") as f:
            f.write(str(MEMCG_LIMIT))
        out: Dict[str, Any] = dict(run_cmd(argv, os.path.join(d, "cgroup.procs")))
        with open(os.path.join(d, "memory.max_usage_in_bytes")) as f:
            out["cgroup_max_usage_bytes"] = int(f.read())
        out["limit_bytes"] = MEMCG_LIMIT
        return out
    finally:
        os.rmdir(d)


def build_floor(work: str) -> str:
    exe = os.path.join(work, "reader_floor")
    src = os.path.join(benchlib.REPO, "src")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-I", src,
                    os.path.join(benchlib.REPO, "bench", "reader_floor.c"),
                    os.path.join(src, "recording", "record_scan.c"), "-lm", "-o", exe], check=True)
    return exe


# Python measurements in a fresh interpreter each (no shared caches).
PY_CODE = r'''
import json, sys, time
d, what = sys.argv[1], sys.argv[2]
out = {}
def t(fn):
    s = time.perf_counter(); c = time.process_time(); v = fn()
    out["_cpu"] = time.process_time() - c
    return time.perf_counter() - s, v
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
def best(fn, n=5):
    b, v = float("inf"), None
    for _ in range(n):
        s, v = t(fn); b = min(b, s)
    return b, v
f = d + "/samples.jsonl"
if what == "wattmeter":
    import wattmeter
    import pandas  # imported before the clock starts: to_pandas() is timed, not the import
    base = status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak RSS from here
    except OSError:
        pass
    out["load_s"], r = t(lambda: wattmeter.load(d))
    out["load_cpu_s"] = out["_cpu"]
    out["load_peak_rss_bytes"] = status("VmHWM") - base
    from wattmeter import _native
    out["columns_bytes"] = _native.recording_nbytes(r._rec)
    out["total_s"], out["total_cpu_j"] = best(lambda: r.total("cpu"))
    end = r.duration_s / 3
    out["window_s"], out["window_cpu_j"] = best(lambda: r.total("cpu", start=1000, end=end))
    out["window_end_s"] = end
    out["average_s"], out["avg_cpu_util"] = best(lambda: r.average("cpu_util"))
    out["max_s"], out["max_cpu_w"] = best(lambda: r.max("cpu"))
    out["per_process_s"], pp = best(lambda: r.per_process(start=1000, end=end))
    out["to_pandas_s"], df = t(lambda: r.to_pandas())
    out["to_pandas_cpu_s"] = out["_cpu"]
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
if "_cpu" in out:
    out["cpu_s"] = out.pop("_cpu")
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
    floor = build_floor(work)
    rows: List[Dict[str, Any]] = []
    ok = True
    try:
        for size in a.sizes:
            n = SIZES[size]
            d = os.path.join(work, size)
            gen_s, _ = timed(lambda: write_recording(d, n))
            nbytes = os.path.getsize(os.path.join(d, "samples.jsonl"))
            row: Dict[str, Any] = {"size": size, "samples": n + 1, "bytes": nbytes, "generate_s": round(gen_s, 2)}
            row["report_text"] = run_cmd([binary, "report", d])
            row["report_json"] = run_cmd([binary, "report", d, "--json"])
            row["report_html"] = run_cmd([binary, "report", d, "--html", os.path.join(work, size + ".html")])
            row["report_text_s"] = row["report_text"]["s"]
            row["report_limited"] = run_limited([binary, "report", d])
            p = subprocess.run([floor, os.path.join(d, "samples.jsonl")], capture_output=True, text=True, check=True)
            row["floor"] = json.loads(p.stdout)
            if a.before:
                row["before_report_text_s"] = run_cmd([a.before, "report", d])["s"]
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

    def mb(x: Any) -> str:
        return "%.1f MB" % (x / 1e6) if isinstance(x, (int, float)) else "-"

    def cmd(r: Dict[str, Any], k: str) -> str:
        c = r[k]
        return "%s, CPU %s, %s RSS" % (s(c["s"]), s(c["cpu_s"]), mb(c["rss_bytes"]))

    def ratio(a_s: Any, b_s: Any) -> str:
        return "%.1f×" % (a_s / b_s) if isinstance(a_s, (int, float)) and b_s else "-"

    def get(r: Dict[str, Any], what: str, k: str = "s") -> Any:
        v = r.get(what)
        return v.get(k) if isinstance(v, dict) else None

    line("samples.jsonl", lambda r: "%d lines, %.1f MB" % (r["samples"], r["bytes"] / 1e6))
    line("`wattmeter report` (text)", lambda r: "%s (%.0f MB/s)" % (cmd(r, "report_text"),
                                                                  r["bytes"] / 1e6 / r["report_text"]["s"]))
    line("`report` (text), MB/s of CPU time", lambda r: "%.0f MB/s" % (r["bytes"] / 1e6 / r["report_text"]["cpu_s"]))
    if a.before:
        line("`report` (text), before", lambda r: s(r.get("before_report_text_s")))
    line("`report --json`", lambda r: cmd(r, "report_json"))
    line("`report --html`", lambda r: cmd(r, "report_html"))
    line("`report` (text) in %d MiB of memory (cgroup)" % (MEMCG_LIMIT >> 20),
         lambda r: ("%s, cgroup peak %s" % (s(r["report_limited"]["s"]), mb(r["report_limited"]["cgroup_max_usage_bytes"]))
                    if "s" in r["report_limited"] else r["report_limited"].get("skipped", "-")))
    line("`wattmeter.load()`", lambda r: "%s, CPU %s" % (s(r["python"].get("load_s")), s(r["python"].get("load_cpu_s"))))
    line("load(): peak RSS / its columns' bytes", lambda r: "%s / %s = %.2f" % (
        mb(r["python"].get("load_peak_rss_bytes")), mb(r["python"].get("columns_bytes")),
        r["python"]["load_peak_rss_bytes"] / r["python"]["columns_bytes"]) if r["python"].get("columns_bytes") else "-")
    line("`report --html`: peak RSS above the text report's / the columns' bytes", lambda r: "%.2f" % (
        (r["report_html"]["rss_bytes"] - r["report_text"]["rss_bytes"]) / r["python"]["columns_bytes"])
        if r["python"].get("columns_bytes") else "-")
    for k, label in (("total_s", "then `total(\"cpu\")`"),
                     ("window_s", "then `total(\"cpu\", start=1000, end=T/3)`"),
                     ("average_s", "then `average(\"cpu_util\")`"), ("max_s", "then `max(\"cpu\")`"),
                     ("per_process_s", "then `per_process(1000, T/3)`"), ("to_pandas_s", "then `to_pandas()`")):
        line(label, lambda r, k=k: s(r["python"].get(k)))
    line("`to_pandas()`, CPU", lambda r: s(r["python"].get("to_pandas_cpu_s", r["python"].get("cpu_s"))))
    line("parse floor: read + scan (bench/reader_floor.c)", lambda r: "%s, CPU %s (read(2): CPU %s); %d of %d lines scanned" % (
        s(r["floor"]["wall_s"]), s(r["floor"]["cpu_s"]), s(r["floor"]["read_cpu_s"]), r["floor"]["scanned"], r["floor"]["lines"]))
    for what in ("pandas.read_json", "polars.read_ndjson", "json.loads", "orjson.loads", "read_bytes"):
        label = {"read_bytes": "reading the file's bytes"}.get(what, f"`{what}`" + (" loop" if "loads" in what else ""))
        line(label, lambda r, w=what: "%s, CPU %s" % (s(get(r, w)), s(get(r, w, "cpu_s"))) if get(r, w) else "-")
    line("load() / (reading the bytes + the floor's scan), CPU", lambda r: "%.2f" % (
        r["python"]["load_cpu_s"] / (r["read_bytes"]["cpu_s"] + r["floor"]["cpu_s"] - r["floor"]["read_cpu_s"]))
        if r["python"].get("load_cpu_s") and get(r, "read_bytes", "cpu_s") is not None else "-")
    line("load() / (reading the bytes + the floor's scan), wall", lambda r: "%.2f" % (
        r["python"]["load_s"] / (r["read_bytes"]["s"] + r["floor"]["wall_s"] - r["floor"]["read_wall_s"]))
        if r["python"].get("load_s") and get(r, "read_bytes") else "-")
    line("report vs pandas.read_json (wall)", lambda r: ratio(get(r, "pandas.read_json"), r["report_text"]["s"]))
    line("report vs polars.read_ndjson (wall)", lambda r: ratio(get(r, "polars.read_ndjson"), r["report_text"]["s"]))
    line("report vs pandas.read_json (CPU)", lambda r: ratio(get(r, "pandas.read_json", "cpu_s"), r["report_text"]["cpu_s"]))
    line("report vs polars.read_ndjson (CPU, all its threads)",
         lambda r: ratio(get(r, "polars.read_ndjson", "cpu_s"), r["report_text"]["cpu_s"]))
    line("totals = truth (50 W × span)", lambda r: "yes" if r.get("truth") and
         abs(r["python"]["total_cpu_j"] - r["truth"]["total_cpu_j"]) < 1e-3 else "NO")
    benchlib.write_results(os.path.join(benchlib.RESULTS, f"reader-columns-{benchlib.stamp()}-{m['host']}"), md,
                           {"machine": m, "binary": binary, "rows": rows})
    print(md)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
