#!/usr/bin/env python3
"""exporter_attack.py — a real scraper's latency and success while
`wattmeter serve` is attacked on loopback, beside the same scraper unattacked.

Scenarios (each run in turn, REPEATS times, interleaved):
  baseline        the scraper alone
  slowloris       + 1,500 slow sockets from 127.0.0.2 … 127.0.0.17 (request
                  line, then one header line every 0.5 s, never the end of the
                  headers; the server's closures are reopened every 0.5 s)
  slowloris fresh the same attack, the scraper on a new connection for every
                  scrape (as after an idle timeout, or behind a proxy): each
                  scrape needs the server to accept during the attack
  auth baseline   basic auth (bcrypt cost 10), the scraper's password
                  verified once before (cached), no attack
  wrong passwords + 32 clients sending wrong passwords in a loop (each sends
                  the next as soon as the last is answered), from 127.0.0.2 …
The attackers are tests/fixtures/hostile_clients.py, each in its own process.

The scraper behaves as Prometheus does: one GET /metrics every 0.1 s (the
exposition text, Accept-Encoding: gzip), on a kept-alive connection, and, as
Go's HTTP client does, a request that fails on a reused connection before
any answer is retried once on a new one; the time reported is the whole
scrape's, retry included. A scrape succeeds on 200 within 5 s. Only scrapes
started in the measurement window (after 3 s of attack, for SECONDS) count;
the attack lasts until every one of them has ended.

    python3 bench/exporter_attack.py [--seconds 10] [--repeats 3] [--compare OLD_BIN]
        → bench/results/exporter-attack-<date>-<host>.md (+ .json)

Uses WATTMETER_BIN, else build-bench/wattmeter, else the one on PATH;
--compare runs every scenario against a second binary too (e.g. a build of
the previous commit) and puts it beside. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

HOSTILE = os.path.join(bl.REPO, "tests", "fixtures", "hostile_clients.py")
WARMUP_S = 3.0
EVERY_S = 0.1
TIMEOUT_S = 5.0
PASSWORD = "scraper pass"


def start_serve(wm: str, args: List[str]) -> subprocess.Popen:
    p = subprocess.Popen([wm, "serve", "--listen", "127.0.0.1:0", *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"serving http://127\.0\.0\.1:(\d+)/metrics", line)
    if not m:
        p.kill()
        raise SystemExit(f"wattmeter serve did not start: {line!r}")
    p.port = int(m.group(1))  # type: ignore[attr-defined]
    return p


class Scraper:
    """Prometheus-like: keep-alive, one retry on a stale reused connection;
    fresh: a new connection for every scrape, closed after it."""

    def __init__(self, port: int, headers: Dict[str, str], fresh: bool = False) -> None:
        self.port, self.headers = port, {"Accept-Encoding": "gzip", **headers}
        self.fresh = fresh
        self.conn: Optional[http.client.HTTPConnection] = None
        self.reused_retries = 0
        self.new_connections = 0

    def _once(self, deadline: float) -> int:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=max(0.01, deadline -
                                                                                        time.monotonic()))
            self.new_connections += 1
        else:
            self.conn.timeout = max(0.01, deadline - time.monotonic())
            if self.conn.sock is not None:
                self.conn.sock.settimeout(self.conn.timeout)
        self.conn.request("GET", "/metrics", headers=self.headers)
        r = self.conn.getresponse()
        r.read()
        if self.fresh or (r.getheader("connection") or "").lower() == "close":
            self.conn.close()
            self.conn = None
        return r.status

    def scrape(self) -> Tuple[int, float]:
        t0 = time.monotonic()
        deadline = t0 + TIMEOUT_S
        reused = self.conn is not None
        try:
            st = self._once(deadline)
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
                self.conn = None
            st = 0
            # Go retries a request that failed on a reused connection before
            # any byte of an answer (the server had closed it while idle).
            if reused and not isinstance(e, TimeoutError) and time.monotonic() < deadline:
                self.reused_retries += 1
                try:
                    st = self._once(deadline)
                except (OSError, http.client.HTTPException):
                    if self.conn is not None:
                        self.conn.close()
                        self.conn = None
                    st = 0
        return st, time.monotonic() - t0


def run_scenario(wm: str, name: str, seconds: float, web: Optional[str]) -> Dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "sys"))
        args = ["--sysfs-root", os.path.join(d, "sys"), "--no-gpu", "--period", "0.5"]
        if web:
            args += ["--web.config.file", web]
        srv = start_serve(wm, args)
        headers = {}
        if web:
            headers = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()}
        try:
            sc = Scraper(srv.port, headers, fresh="fresh" in name)
            end = time.monotonic() + 15
            while sc.scrape()[0] != 200:  # first sample in; the password verified (cached)
                if time.monotonic() > end:
                    raise SystemExit(f"{name}: no metrics within 15 s")
                time.sleep(0.1)
            attack_s = WARMUP_S + seconds + TIMEOUT_S + 1.0
            att = None
            if name.startswith("slowloris"):
                att = subprocess.Popen([sys.executable, HOSTILE, "slowloris", "--port", str(srv.port),
                                        "--sockets", "1500", "--addrs", "16", "--seconds", str(attack_s),
                                        "--cycle", "0.5"], stdout=subprocess.PIPE, text=True)
            elif name == "wrong passwords":
                att = subprocess.Popen([sys.executable, HOSTILE, "wrong-passwords", "--port", str(srv.port),
                                        "--clients", "32", "--user", "prometheus", "--seconds", str(attack_s)],
                                       stdout=subprocess.PIPE, text=True)
            cpu0 = proc_cpu_s(srv.pid)
            time.sleep(WARMUP_S)
            lat: List[float] = []
            ok = n = 0
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                t = time.monotonic()
                st, dt = sc.scrape()
                n += 1
                if st == 200:
                    ok += 1
                    lat.append(dt)
                else:
                    lat.append(float("inf"))  # a failure counts as slower than any success
                time.sleep(max(0.0, EVERY_S - (time.monotonic() - t)))
            daemon_cpu = proc_cpu_s(srv.pid) - cpu0
            attacker = json.loads(att.communicate(timeout=attack_s + 60)[0].strip().splitlines()[-1]) if att else {}
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(30)
    fin = sorted(lat)
    return {"scenario": name, "scrapes": n, "ok": ok, "success_pct": 100.0 * ok / max(n, 1),
            "p50_s": rank(fin, 50), "p99_s": rank(fin, 99),
            "max_s": fin[-1] if fin else float("nan"), "new_connections": sc.new_connections,
            "reused_retries": sc.reused_retries, "daemon_cpu_s": daemon_cpu, "attacker": attacker}


def rank(sorted_v: List[float], p: float) -> float:
    """Nearest-rank percentile (failures are +inf, so no interpolation)."""
    if not sorted_v:
        return float("nan")
    k = max(0, min(len(sorted_v) - 1, -(-len(sorted_v) * p // 100) - 1))
    return sorted_v[int(k)]


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(x: float) -> str:
    if x != x:
        return "–"
    if x == float("inf"):
        return "failed"
    return f"{x * 1e3:.2f}" if x < 0.1 else f"{x * 1e3:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window per run (default 10)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compare", default=None, help="a second wattmeter binary to run beside")
    ap.add_argument("--only", nargs="+", default=None, help="scenarios to run (default: all four)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        raise SystemExit("htpasswd not found: apt-get install apache2-utils")
    wm = bl.wattmeter_bin()
    bins = [("this", wm)] + ([("compared", a.compare)] if a.compare else [])
    m = bl.machine()
    print(f"wattmeter: {wm}" + (f"; compared: {a.compare}" if a.compare else "") + f"\n{bl.machine_md(m)}",
          flush=True)
    scenarios = a.only or ["baseline", "slowloris", "slowloris fresh", "auth baseline", "wrong passwords"]
    res: Dict[str, Dict[str, List[Dict[str, object]]]] = {b: {s: [] for s in scenarios} for b, _ in bins}
    with tempfile.TemporaryDirectory() as d:
        h = subprocess.run([htpasswd, "-nbBC", "10", "prometheus", PASSWORD], check=True, capture_output=True,
                           text=True).stdout.strip().partition(":")[2]
        web = os.path.join(d, "web.yml")
        with open(web, "w") as f:
            f.write(f"basic_auth_users:\n  prometheus: '{h}'\n")
        for rep in range(a.repeats):
            for s in scenarios:
                for label, b in bins:
                    r = run_scenario(b, s, a.seconds, web if "auth" in s or "password" in s else None)
                    res[label][s].append(r)
                    print(f"  rep {rep + 1} {label:8s} {s:16s} {r['ok']}/{r['scrapes']} ok  "
                          f"p50 {ms(r['p50_s'])} ms  p99 {ms(r['p99_s'])} ms  max {ms(r['max_s'])} ms  "
                          f"attacker {r['attacker']}", flush=True)

    def med(runs: List[Dict[str, object]], key: str) -> str:
        v = sorted(float(r[key]) for r in runs)
        if not v:
            return "–"
        mid = v[len(v) // 2]
        f = (lambda x: f"{x:.1f}") if key == "success_pct" else ms
        return f"{f(mid)} ({f(v[0])}–{f(v[-1])})" if len(v) > 1 else f(mid)

    rows = []
    for label, b in bins:
        for s in scenarios:
            runs = res[label][s]
            ok = sum(int(r["ok"]) for r in runs)
            n = sum(int(r["scrapes"]) for r in runs)
            att = runs[-1]["attacker"] if runs else {}
            note = ""
            if s.startswith("slowloris") and att:
                note = f"{att.get('closed_by_server', 0)} attack sockets closed by the server (last run)"
            elif s == "wrong passwords" and att:
                note = ", ".join(f"{k}: {v}" for k, v in sorted(att.get("answers", {}).items())) + " (last run)"
            rows.append(f"| {label} | {s} | {ok} of {n} ({100.0 * ok / max(n, 1):.1f}%) | {med(runs, 'p50_s')} | "
                        f"{med(runs, 'p99_s')} | {med(runs, 'max_s')} | {note} |")
    md = (f"# wattmeter serve under attack: a scraper's latency and success\n\n{bl.machine_md(m)}"
          f"- binary `{wm}`" + (f"; compared: `{a.compare}`" if a.compare else "") + "\n\n"
          f"Loopback; a scrape every {EVERY_S} s for {a.seconds:g} s per run after {WARMUP_S:g} s of attack, "
          f"{a.repeats} repeats (median (min–max) of the runs' percentiles); success = 200 within {TIMEOUT_S:g} s; "
          "a failed scrape counts as slower than any success in the percentiles. The scraper keeps its "
          "connection alive and retries once on a stale reused one, as Prometheus' Go client does "
          "(in `slowloris fresh` it opens a new connection for every scrape instead). "
          "bcrypt cost 10. Attackers and scraper run on the same machine as the server.\n\n"
          "| binary | scenario | scrapes answered 200 | p50 (ms) | p99 (ms) | max (ms) | attack |\n"
          "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
          "slowloris (both): 1,500 sockets from 127.0.0.2-17, a header line every 0.5 s, reopened every 0.5 s when "
          "closed. wrong passwords: 32 clients in a loop, the next request as soon as the last is answered.\n")
    base = a.out or os.path.join(bl.RESULTS, f"exporter-attack-{bl.stamp()}-{m['host']}")
    bl.write_results(base, md, {"machine": m, "seconds": a.seconds, "repeats": a.repeats, "results": res,
                                "binary": wm, "compared": a.compare})
    print(md)
    print(f"wrote {base}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
