#!/usr/bin/env python3
"""exporter_load.py — `wattmeter serve` under scrape load, and a soak.

1. Load: wrk (Debian's `wrk`, loopback only, bounded: SECONDS per run) hits
   /metrics with 1, 10 and 100 concurrent connections (and 10 with gzip, as
   Prometheus asks), against an idle baseline. For each run: scrape latency
   p50/p99 and requests/s from wrk, and from the exporter's own counters
   whether sampling kept its period (samples per second x period, 1.0 =
   on time) and what a sample cost (sampler-thread CPU per sample, from
   wattmeter_self_cpu_seconds_total) — the claim is that scrapes never slow
   the sampler, since they only copy the last snapshot. The daemon's whole
   CPU (/proc/PID/stat, HTTP threads included) is reported beside it.
2. Soak: --per-process --per-cgroup while thousands of short-lived processes
   come and go; RSS (VmRSS) of the daemon sampled every second: flat means
   exited processes are folded and forgotten.

    python3 bench/exporter_load.py [--seconds 8] [--repeats 3] [--soak-procs 3000]
        → bench/results/exporter-<date>-<host>.md (+ .json)

Uses WATTMETER_BIN, else build-bench/wattmeter, else the one on PATH.
Nothing asserts a time; figures are medians with min–max over the repeats,
configurations interleaved.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

# Counter period during the load runs: 0.1 s gives ~80 samples per 8 s run,
# so "period kept" resolves to about 1% (one sample more or less); the
# per-sample cost does not depend on the period. The soak uses the default.
PERIOD_S = 0.1
SOAK_PERIOD_S = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_serve(wm: str, args: List[str]) -> subprocess.Popen:
    p = subprocess.Popen([wm, "serve", "--listen", "127.0.0.1:0", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"serving (\S+)/metrics", line)
    if not m:
        p.kill()
        raise SystemExit(f"wattmeter serve did not start: {line!r}")
    p.url = m.group(1)  # type: ignore[attr-defined]
    return p


def scrape(url: str) -> Dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    out["_bytes"] = float(len(text))
    out["_series"] = float(sum(1 for ln in text.splitlines() if ln and not ln.startswith("#")))
    return out


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wrk_run(url: str, conns: int, seconds: float, gzip: bool) -> Dict[str, float]:
    cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds:g}s", "--latency",
           "--timeout", "5s"]
    if gzip:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd + [url + "/metrics"], capture_output=True, text=True, timeout=seconds + 30).stdout

    def dur(tok: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", tok)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]

    r: Dict[str, float] = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s*{pct}%\s+(\S+)", out, re.M)
        r[f"p{pct}_s"] = dur(m.group(1)) if m else float("nan")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for kind, val in zip(("connect", "read", "write", "timeout"), m.groups() if m else (0, 0, 0, 0)):
        r[f"err_{kind}"] = float(val)
    r["socket_errors"] = sum(r[f"err_{k}"] for k in ("connect", "read", "write", "timeout"))
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = float(m.group(1)) if m else float("nan")
    return r


def idle_run(seconds: float) -> Dict[str, float]:
    time.sleep(seconds)
    return {"p50_s": float("nan"), "p99_s": float("nan"), "rps": 0.0, "non2xx": 0.0, "socket_errors": 0.0,
            "err_read": 0.0, "requests": 0.0}


def load_phase(wm: str, root: str, seconds: float, repeats: int) -> Dict[str, List[Dict[str, float]]]:
    configs = [("idle", 0, False), ("1", 1, False), ("10", 10, False), ("100", 100, False), ("10 gzip", 10, True)]
    res: Dict[str, List[Dict[str, float]]] = {name: [] for name, _, _ in configs}
    srv = start_serve(wm, ["--sysfs-root", root, "--period", str(PERIOD_S)])
    try:
        time.sleep(2 * PERIOD_S)
        for rep in range(repeats):
            for name, conns, gz in configs:
                a, ca, ta = scrape(srv.url), proc_cpu_s(srv.pid), time.monotonic()
                r = idle_run(seconds) if conns == 0 else wrk_run(srv.url, conns, seconds, gz)
                b, cb, tb = scrape(srv.url), proc_cpu_s(srv.pid), time.monotonic()
                dt = tb - ta
                dn = b["wattmeter_samples_total"] - a["wattmeter_samples_total"]
                r["period_kept"] = dn / dt * PERIOD_S  # 1.0: one sample per period
                r["sampler_cpu_per_sample_s"] = (b["wattmeter_self_cpu_seconds_total"] -
                                                 a["wattmeter_self_cpu_seconds_total"]) / max(dn, 1)
                r["sample_duration_s"] = b["wattmeter_sample_duration_seconds"]
                r["daemon_cpu_pct_of_core"] = 100.0 * (cb - ca) / dt
                r["body_bytes"] = b["_bytes"]
                res[name].append(r)
                print(f"  rep {rep + 1} {name:8s} p50 {r['p50_s'] * 1e3:7.3f} ms  p99 {r['p99_s'] * 1e3:7.3f} ms  "
                      f"{r['rps']:8.0f} req/s  period kept {r['period_kept']:.3f}  "
                      f"sampler {r['sampler_cpu_per_sample_s'] * 1e6:6.1f} us/sample  "
                      f"daemon {r['daemon_cpu_pct_of_core']:5.1f}% core", flush=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)
    return res


def soak_phase(wm: str, root: str, n_procs: int) -> Dict[str, object]:
    srv = start_serve(wm, ["--sysfs-root", root, "--period", str(SOAK_PERIOD_S), "--per-process", "--per-cgroup"])
    rss: List[tuple] = []
    t0 = time.monotonic()
    try:
        time.sleep(3.0)  # let the first scans and snapshots settle
        rss_start = bl.read_status_kb(srv.pid, "VmRSS")
        rss.append((time.monotonic() - t0, rss_start))
        true = shutil.which("true") or "/bin/true"
        spawned, next_poll = 0, time.monotonic() + 1.0
        # Batches of short-lived processes, each living ~20 ms, so that many
        # are seen by a 1 s process scan and then exit.
        while spawned < n_procs:
            batch = [subprocess.Popen(["sleep", "0.02"]) for _ in range(min(20, n_procs - spawned))]
            for p in batch:
                p.wait()
            spawned += len(batch)
            subprocess.run([true])
            if time.monotonic() >= next_poll:
                rss.append((time.monotonic() - t0, bl.read_status_kb(srv.pid, "VmRSS")))
                scrape(srv.url)  # keep the HTTP side busy too
                next_poll += 1.0
        time.sleep(3.0)  # their exits folded at the next scans
        final = scrape(srv.url)
        rss_end = bl.read_status_kb(srv.pid, "VmRSS")
        rss.append((time.monotonic() - t0, rss_end))
        hwm = bl.read_status_kb(srv.pid, "VmHWM")
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(30)
    return {"procs_spawned": spawned, "seconds": round(time.monotonic() - t0, 1), "rss_start_kb": rss_start,
            "rss_end_kb": rss_end, "rss_max_kb": max(v for _, v in rss if v), "vmhwm_kb": hwm,
            "series_at_end": final["_series"], "rss_trace": rss,
            "dropped_process_series": final.get('wattmeter_exporter_dropped_series_total{family="process"}')}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="per wrk run (default 8)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--soak-procs", type=int, default=3000)
    ap.add_argument("--out", default=None, help="results base path (default bench/results/exporter-DATE-HOST)")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    wm = bl.wattmeter_bin()
    m = bl.machine()
    print(f"wattmeter: {wm}\n{bl.machine_md(m)}", flush=True)
    with tempfile.TemporaryDirectory() as d, bl.FakeRaplProc(os.path.join(d, "sys")) as fake:
        print("load:", flush=True)
        load = load_phase(wm, fake.root, a.seconds, a.repeats)
        print("soak:", flush=True)
        soak = soak_phase(wm, fake.root, a.soak_procs)

    def cell(runs: List[Dict[str, float]], key: str, scale: float, nd: int) -> str:
        vals = sorted(r[key] * scale for r in runs if r[key] == r[key])  # NaN: not measured (idle)
        if not vals:
            return "–"
        med = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
        return f"{med:.{nd}f} ({vals[0]:.{nd}f}–{vals[-1]:.{nd}f})"

    rows = []
    for name, runs in load.items():
        errs = int(sum(r["non2xx"] + r["socket_errors"] for r in runs))
        reqs = int(sum(r.get("requests", 0) for r in runs))
        rows.append(f"| {name} | {cell(runs, 'p50_s', 1e3, 3)} | {cell(runs, 'p99_s', 1e3, 2)} | "
                    f"{cell(runs, 'rps', 1, 0)} | {cell(runs, 'period_kept', 1, 3)} | "
                    f"{cell(runs, 'sampler_cpu_per_sample_s', 1e6, 0)} | {cell(runs, 'daemon_cpu_pct_of_core', 1, 1)} | "
                    f"{errs} of {reqs} |")
    body = int(load['1'][0]['body_bytes']) if load['1'] else 0
    md = (f"# wattmeter serve: scrape load and soak\n\n{bl.machine_md(m)}- binary `{wm}`\n\n"
          f"## Scrape latency under load (`wrk`, loopback, {a.seconds:g} s per run, {a.repeats} repeats, "
          f"median (min–max))\n\n"
          f"Fake `intel-2pkg` tree (9 zones), counter period {PERIOD_S} s, /metrics body {body} bytes "
          f"(text format).\n\n"
          "| concurrent connections | p50 (ms) | p99 (ms) | requests/s | period kept (1 = on time) | "
          "sampler CPU per sample (µs) | daemon CPU (% of a core) | errors (wrk) |\n"
          "|---|---|---|---|---|---|---|---|\n"
          + "\n".join(rows) + "\n\n"
          "`period kept` = samples counted by `wattmeter_samples_total` during the run × period / duration "
          "(±1 sample ≈ ±1.3%). `sampler CPU per sample` = Δ`wattmeter_self_cpu_seconds_total` / Δsamples: the "
          "sampler thread, formatting both exposition texts included. `daemon CPU` adds libmicrohttpd's "
          "threads serving the scrapes; wrk runs on the same 2 cores. Errors are wrk's socket errors (read: "
          "a connection reset) and non-2xx answers.\n\n"
          f"## Soak: {soak['procs_spawned']} short-lived processes, `--per-process --per-cgroup`, "
          f"period {SOAK_PERIOD_S} s\n\n"
          f"- duration {soak['seconds']} s; RSS {soak['rss_start_kb']} kB after start-up, "
          f"{soak['rss_end_kb']} kB at the end, max {soak['rss_max_kb']} kB while they came and went "
          f"(VmHWM {soak['vmhwm_kb']} kB)\n"
          f"- series in the last snapshot: {int(soak['series_at_end'])}\n")
    base = a.out or os.path.join(bl.RESULTS, f"exporter-{bl.stamp()}-{m['host']}")
    bl.write_results(base, md, {"machine": m, "period_s": PERIOD_S, "seconds": a.seconds, "load": load,
                                "soak": soak})
    print(md)
    print(f"wrote {base}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
