#!/usr/bin/env python3
"""bench/proxy.py — what `wattmeter proxy` costs a request, against the same
server reached directly, in one run on loopback.

The server is tests/python/llm_server.py (OpenAI SSE streams, a little CPU
per token). The client is a raw HTTP/1.1 keep-alive client on sockets (no
client library in the measured path), the same for both routes; direct and
proxied runs are interleaved (ABAB) so the machine's drift hits both.

  1. latency, one request at a time: time to first token (the first SSE
     `data:` byte) and total time, p50 and p99, direct and proxied; the
     proxy's addition is the difference (target <= 1 ms at p99);
  2. throughput at 1, 10 and 100 concurrent streaming requests
     (connections), requests/s for a fixed time (target >= 95 % of direct);
  3. memory: the proxy's RSS over a soak of as many requests as fit in
     --soak-s seconds (target: flat);
  4. the sampler's cost: the meter thread's CPU per sample (meta.json self)
     in an idle proxy, a loaded one, and `wattmeter run -- sleep` at the same
     period (target: unchanged).

  python3 bench/proxy.py [--quick] [--before OLD_WATTMETER] [--out bench/results/proxy-DATE-vm]

--before runs another build of wattmeter (an older commit's) as a second
proxy in front of the same server, interleaved with the direct and the
current runs at each concurrency, so that a change's effect on throughput
and CPU per request is measured under the same load (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

sys.path.insert(0, os.path.join(bl.REPO, "tests", "python"))
from llm_server import start_server  # noqa: E402

TOKENS = 16


def request_bytes(tokens: int, stream: bool = True) -> bytes:
    body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "one two three"}],
                       "max_tokens": tokens, "stream": stream}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer sk-bench\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


class Client:
    """One keep-alive connection; .one() sends a streaming request and returns
    (time to the first `data:` byte, total time) in seconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.s: Optional[socket.socket] = None

    def connect(self) -> None:
        self.s = socket.create_connection(("127.0.0.1", self.port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one(self, req: bytes) -> Tuple[float, float]:
        if self.s is None:
            self.connect()
        assert self.s is not None
        t0 = time.perf_counter()
        self.s.sendall(req)
        buf = b""
        ttft = None
        while True:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed mid-response")
            buf += d
            if ttft is None and b"data:" in buf:
                ttft = time.perf_counter() - t0
            if buf.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
                break
        total = time.perf_counter() - t0
        if not buf.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(buf[:200])
        return ttft if ttft is not None else total, total

    def close(self) -> None:
        if self.s:
            self.s.close()
            self.s = None


class Proxy:
    def __init__(self, wm: str, upstream: str, out: str, period: str = "0.5") -> None:
        self.out = out
        self.err = open(out + ".stderr", "w+")
        self.proc = subprocess.Popen([wm, "proxy", "--listen", "0", "--upstream", upstream, "-o", out,
                                      "--period", period, "--no-gpu"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(300):
            with open(out + ".stderr") as f:
                t = f.read()
            if "serving " in t:
                self.port = int(t.split("serving ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                raise RuntimeError(t)
            time.sleep(0.05)
        raise RuntimeError("proxy did not start")

    def rss_kb(self) -> int:
        return bl.read_status_kb(self.proc.pid, "VmRSS") or 0

    def stop(self) -> Dict[str, object]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.err.close()
        with open(os.path.join(self.out, "meta.json")) as f:
            return json.load(f)


def latency(ports: Dict[str, int], n: int, blocks: int) -> Dict[str, Dict[str, float]]:
    req = request_bytes(TOKENS)
    samples: Dict[str, List[Tuple[float, float]]] = {k: [] for k in ports}
    clients = {k: Client(p) for k, p in ports.items()}
    for c in clients.values():
        for _ in range(20):  # warm-up: connections, caches
            c.one(req)
    for _ in range(blocks):
        for k, c in clients.items():
            for _ in range(n):
                samples[k].append(c.one(req))
    for c in clients.values():
        c.close()
    out: Dict[str, Dict[str, float]] = {}
    for k, v in samples.items():
        tt = [x[0] for x in v]
        to = [x[1] for x in v]
        out[k] = {"n": len(v), "ttft_p50_ms": bl.percentile(tt, 50) * 1e3, "ttft_p99_ms": bl.percentile(tt, 99) * 1e3,
                  "total_p50_ms": bl.percentile(to, 50) * 1e3, "total_p99_ms": bl.percentile(to, 99) * 1e3}
    return out


def throughput(port: int, conc: int, seconds: float) -> float:
    req = request_bytes(TOKENS)
    stop = time.monotonic() + seconds
    counts = [0] * conc
    errors: List[str] = []

    def worker(i: int) -> None:
        c = Client(port)
        try:
            while time.monotonic() < stop:
                c.one(req)
                counts[i] += 1
        except Exception as e:  # noqa: BLE001 (reported)
            errors.append(repr(e))
        finally:
            c.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]}")
    return sum(counts) / (time.monotonic() - t0)


def cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput_table(direct: int, px: "Proxy", server_pid: int, seconds: float,
                     before: Optional["Proxy"] = None) -> Dict[str, Dict[str, object]]:
    out: Dict[str, Dict[str, object]] = {}
    for conc in (1, 10, 100):
        d, q, pcpu, scpu, bq, bcpu = [], [], [], [], [], []
        for _ in range(2):  # ABAB (ABCABC with --before)
            d.append(throughput(direct, conc, seconds))
            c0, s0 = cpu_s(px.proc.pid), cpu_s(server_pid)
            q.append(throughput(px.port, conc, seconds))
            n = q[-1] * seconds
            pcpu.append((cpu_s(px.proc.pid) - c0) / n * 1e6)
            scpu.append((cpu_s(server_pid) - s0) / n * 1e6)
            if before:
                b0 = cpu_s(before.proc.pid)
                bq.append(throughput(before.port, conc, seconds))
                bcpu.append((cpu_s(before.proc.pid) - b0) / (bq[-1] * seconds) * 1e6)
        row: Dict[str, object] = {"direct_rps": d, "proxy_rps": q, "ratio": (sum(q) / len(q)) / (sum(d) / len(d)),
                                  "proxy_cpu_us_per_request": sum(pcpu) / 2, "server_cpu_us_per_request": sum(scpu) / 2}
        if before:
            row.update({"before_rps": bq, "before_ratio": sum(bq) / sum(d), "before_cpu_us_per_request": sum(bcpu) / 2})
        out[str(conc)] = row
        print(conc, row, flush=True)
    return out


def soak(p: Proxy, seconds: float, conc: int) -> Dict[str, object]:
    req = request_bytes(2)
    stop = time.monotonic() + seconds
    done = [0] * conc
    rss: List[Tuple[int, int]] = [(0, p.rss_kb())]

    def worker(i: int) -> None:
        c = Client(p.port)
        while time.monotonic() < stop:
            c.one(req)
            done[i] += 1
        c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts):
        time.sleep(min(5.0, max(0.1, stop - time.monotonic())))
        rss.append((sum(done), p.rss_kb()))
    for t in ts:
        t.join()
    return {"requests": sum(done), "rss_kb": rss}


def sampler_cost(meta: Dict[str, object]) -> Optional[float]:
    s = meta.get("self") or {}
    if not isinstance(s, dict) or not s.get("samples"):
        return None
    return float(s["cpu_s"]) / float(s["samples"]) * 1e6  # us per sample


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="short runs (a smoke of the script)")
    ap.add_argument("--soak-s", type=float, default=150.0)
    ap.add_argument("--out", default=os.path.join(bl.RESULTS, f"proxy-{bl.stamp()}-vm"))
    ap.add_argument("--render", metavar="JSON", help="write the Markdown again from a stored run's JSON")
    ap.add_argument("--before", metavar="WATTMETER", help="another build, run interleaved as a second proxy")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            render(json.load(f), a.out)
        return 0
    wm = bl.wattmeter_bin()
    m = bl.machine()
    n, blocks, tput_s, soak_s, idle_s = (50, 2, 2.0, 10.0, 3.0) if a.quick else (250, 4, 6.0, a.soak_s, 10.0)
    tmp = tempfile.mkdtemp(prefix="wm-bench-proxy-")
    srv = start_server("--work", "20")
    res: Dict[str, object] = {"machine": m, "tokens_per_request": TOKENS, "server": "tests/python/llm_server.py --work 20"}
    try:
        if a.before:
            res["before"] = a.before
        px = Proxy(wm, srv.url, os.path.join(tmp, "lat"))
        ports = {"direct": srv.port, "proxy": px.port}
        lat = latency(ports, n, blocks)
        lat["added"] = {k: lat["proxy"][k] - lat["direct"][k] for k in lat["direct"] if k != "n"}
        res["latency"] = lat
        print(json.dumps(lat, indent=1), flush=True)
        old = Proxy(a.before, srv.url, os.path.join(tmp, "before")) if a.before else None
        tput: Dict[str, Dict[str, Dict[str, object]]] = {"fast": throughput_table(srv.port, px, srv.pid, tput_s, old)}
        if old:
            old.stop()
        # The same with the server pacing its tokens at 1 ms each (1000
        # tokens/s a stream, faster than any real model serves one): the
        # proxy's fixed cost per request against a request of ~16 ms.
        srv2 = start_server("--work", "20", "--delay-s", "0.001")
        try:
            px2 = Proxy(wm, srv2.url, os.path.join(tmp, "paced"))
            old = Proxy(a.before, srv2.url, os.path.join(tmp, "paced-before")) if a.before else None
            tput["paced"] = throughput_table(srv2.port, px2, srv2.pid, tput_s, old)
            px2.stop()
            if old:
                old.stop()
        finally:
            srv2.stop()
        res["throughput"] = tput
        meta_loaded = px.stop()
        res["sampler_us_per_sample_loaded_proxy"] = sampler_cost(meta_loaded)
        with open(os.path.join(px.out, "requests.jsonl")) as f:
            n_req = sum('"event":"request"' in line for line in f)
        res["loaded_proxy"] = {"self_cpu_s": meta_loaded["self"]["cpu_s"], "samples": meta_loaded["self"]["samples"],
                               "requests": n_req}

        px = Proxy(wm, srv.url, os.path.join(tmp, "soak"))
        s = soak(px, soak_s, 8)
        px.stop()
        res["soak"] = s
        res["soak_s"] = soak_s
        print("soak", s["requests"], s["rss_kb"][0], s["rss_kb"][-1], flush=True)

        px = Proxy(wm, srv.url, os.path.join(tmp, "idle"))
        time.sleep(idle_s)
        res["sampler_us_per_sample_idle_proxy"] = sampler_cost(px.stop())
        r = subprocess.run([wm, "run", "-q", "--period", "0.5", "--no-gpu", "-o", os.path.join(tmp, "run"), "--",
                            "sleep", str(idle_s)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(tmp, "run", "meta.json")) as f:
            res["sampler_us_per_sample_run"] = sampler_cost(json.load(f))
    finally:
        srv.stop()
    render(res, a.out)
    return 0


def render(res: Dict[str, object], out: str) -> None:
    """The results' Markdown (and JSON) from the figures alone: `--render
    FILE.json` writes them again from a stored run."""
    m = res["machine"]
    soak_s = res.get("soak_s", 0)
    lat = res["latency"]
    tp = res["throughput"]
    s = res["soak"]
    rss = s["rss_kb"]
    settled = [kb for done, kb in rss if done >= s["requests"] * 0.1] or [rss[-1][1]]
    md = ["# wattmeter proxy: overhead against the server reached directly (loopback)", "",
          bl.machine_md(m), f"- server: `{res['server']}`, {TOKENS}-token SSE streams; client: raw HTTP/1.1 "
          "keep-alive sockets (Python threads), the same for both routes; direct and proxied runs interleaved", "",
          "## Latency, one request at a time", "",
          "| | TTFT p50 | TTFT p99 | total p50 | total p99 |", "|---|---|---|---|---|"]
    for k in ("direct", "proxy", "added"):
        v = lat[k]
        md.append(f"| {k} | {v['ttft_p50_ms']:.3f} ms | {v['ttft_p99_ms']:.3f} ms | {v['total_p50_ms']:.3f} ms | "
                  f"{v['total_p99_ms']:.3f} ms |")
    md += ["", f"{lat['direct']['n']} requests each route. Target: the proxy adds <= 1 ms at p99.", "",
           "## Throughput, streaming requests", "",
           "fast: the server answers as fast as it can (a 16-token stream in well under a millisecond alone), "
           "so the proxy's fixed cost per request is most of what is compared; paced: the server spends 1 ms "
           "per token (a stream of ~16 ms). Two interleaved runs each (direct / proxy).", "",
           "| server | concurrent | direct req/s | proxy req/s | proxy / direct | CPU/request: proxy, server |",
           "|---|---|---|---|---|---|"]
    for kind, table in tp.items():
        for conc, v in table.items():
            md.append(f"| {kind} | {conc} | {' / '.join('%.0f' % x for x in v['direct_rps'])} | "
                      f"{' / '.join('%.0f' % x for x in v['proxy_rps'])} | {v['ratio'] * 100:.1f} % | "
                      f"{v['proxy_cpu_us_per_request']:.0f} µs, {v['server_cpu_us_per_request']:.0f} µs |")
    md += ["", "Target: >= 95 % of direct.", ""]
    if res.get("before"):
        md += [f"The same runs through `{res['before']}` (the build before the change), interleaved with the two "
               "above under the same load:", "",
               "| server | concurrent | before: proxy req/s | proxy / direct, before → now | "
               "proxy CPU/request, before → now |", "|---|---|---|---|---|"]
        for kind, table in tp.items():
            for conc, v in table.items():
                md.append(f"| {kind} | {conc} | {' / '.join('%.0f' % x for x in v['before_rps'])} | "
                          f"{v['before_ratio'] * 100:.1f} % → {v['ratio'] * 100:.1f} % | "
                          f"{v['before_cpu_us_per_request']:.0f} µs → {v['proxy_cpu_us_per_request']:.0f} µs |")
        md.append("")
    md += [
           "## Memory over a soak", "",
           f"{s['requests']} requests (2-token streams, 8 connections, {soak_s:.0f} s): RSS "
           f"{rss[0][1] / 1024:.1f} MiB at the start, {settled[0] / 1024:.1f} MiB after 10 % of them, "
           f"{rss[-1][1] / 1024:.1f} MiB at the end (min {min(settled) / 1024:.1f}, max {max(settled) / 1024:.1f} "
           "MiB after 10 %).", "",
           "## The sampler's cost (the meter thread's CPU per sample, period 0.5 s)", "",
           f"- `wattmeter run -- sleep`: {res['sampler_us_per_sample_run']:.0f} µs",
           f"- idle proxy: {res['sampler_us_per_sample_idle_proxy']:.0f} µs",
           f"- loaded proxy: {res['sampler_us_per_sample_loaded_proxy']:.0f} µs — the meter's own threads "
           "(sampler and request ledger: self.cpu_s in meta.json counts both) while it served the latency "
           "and fast-throughput runs above"]
    lp = res.get("loaded_proxy")
    if lp:
        base = res["sampler_us_per_sample_idle_proxy"] * 1e-6 * lp["samples"]
        md.append(f"  ({lp['requests']} requests: {(lp['self_cpu_s'] - base) / lp['requests'] * 1e6:.1f} µs of "
                  "ledger CPU per 16-token request beyond the idle sampler's)")
    md.append("")
    # The verdict against the targets, from the figures above.
    added99 = max(lat["added"]["ttft_p99_ms"], lat["added"]["total_p99_ms"])
    misses = [f"{kind} at {conc}: {v['ratio'] * 100:.0f} %" for kind, table in tp.items()
              for conc, v in table.items() if v["ratio"] < 0.95]
    flat = max(settled) <= 1.1 * min(settled)
    run_us = res["sampler_us_per_sample_run"] or float("nan")
    same = (res["sampler_us_per_sample_idle_proxy"] or 0) <= 1.2 * run_us  # the sampler alone
    md += ["## Against the targets", "",
           f"- added p99 (TTFT, total) <= 1 ms: {'met' if added99 <= 1 else 'NOT met'} ({added99:.2f} ms); "
           f"added p50 {lat['added']['ttft_p50_ms']:.2f} ms TTFT, {lat['added']['total_p50_ms']:.2f} ms total",
           f"- throughput >= 95 % of direct: {'met everywhere' if not misses else 'NOT met for ' + ', '.join(misses)}",
           f"- RSS flat over {s['requests']} requests: {'met' if flat else 'NOT met'}",
           f"- sampler cost unchanged (the idle proxy's within 20 % of `run`'s): {'met' if same else 'NOT met'}; "
           "the requests' bookkeeping is the ledger thread's, above", "",
           "Load average at the start was "
           f"{', '.join('%.1f' % x for x in m['loadavg_at_start'])} on {m['cores']} cores shared with other jobs: "
           "each proxied chunk is one more thread hand-off (server thread, proxy thread, client thread), and "
           "where runnable threads outnumber cores that hand-off waits for a core — the tail (p99) and the "
           "CPU-bound rows (the fast server; 100 connections) show the machine's contention more than the "
           "proxy's own cost. The CPU column (/proc/PID/stat around the proxied runs) is the proxy's cost "
           "per request beside the test server's: where the server, the client and the proxy share two "
           "saturated cores, the proxy's share comes out of the server's throughput.", ""]
    bl.write_results(out, "\n".join(md), res)
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
