#!/usr/bin/env python3
"""Requests (issue 19): what the request calls cost, and the ledger at load.

1. Cost per call on the caller: wall time of ``request_begin``,
   ``request_tokens`` and ``request_end`` through the Python binding
   (``_native``: a little Python call overhead included), median and p99.
2. Streams at load: C concurrent streams (default 100), each a token every
   20 ms (50 tokens/s: 5,000 token calls/s in all), new requests replacing
   ended ones, for S seconds, paced: the meter's own threads' CPU (sampler,
   edge thread, ledger thread: ``self_cpu_s``) as a share of one core,
   against the same paced loop with no requests.
3. Memory over many requests: N short requests (default 100,000) through
   one meter, the process's VmRSS and glibc's heap in use (mallinfo2) after
   a flush at each tenth, and the conservation check of the result
   (Σ requests + idle = the server's energy per device). RSS keeps the
   high-water mark of the backlog between two flushes (the queued events
   and open requests of a tenth, ~0.4 kB a request) as free heap; the heap
   in use is what would show a leak or a growing table.

Nothing asserts a time. Runs on the fake RAPL tree (its writer in its own
process). ``python3 bench/requests.py [--seconds S] [--streams C]
[--requests N]`` → bench/results/requests-<date>-<host>.md (+ .json).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

import wattmeter  # noqa: E402
from wattmeter import _native  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


try:
    _mallinfo2: Any = ctypes.CDLL(None).mallinfo2
    _mallinfo2.restype = _MallInfo2
except (AttributeError, OSError):
    _mallinfo2 = None


def heap_in_use_kb() -> int:
    """glibc's bytes in use in malloc's arenas (mallinfo2 uordblks + mmapped
    blocks), all threads' arenas: what RSS cannot tell apart from freed heap
    glibc keeps. -1 where there is no mallinfo2 (not glibc, glibc < 2.33).
    Its types are made once: a ctypes class a call would itself be heap that
    grows with the calls."""
    if _mallinfo2 is None:
        return -1
    mi = _mallinfo2()
    return int((mi.uordblks + mi.hblkhd) // 1024)


def call_costs(m: wattmeter.Meter, n: int) -> dict:
    h = m._handle
    pc = time.perf_counter_ns
    b, t, e = [], [], []
    for i in range(n):
        t0 = pc()
        rid = _native.request_begin(h, '{"model":"m","stream":true}')
        t1 = pc()
        _native.request_tokens(h, rid, 1)
        t2 = pc()
        _native.request_end(h, rid, '{"prompt_tokens":3}')
        t3 = pc()
        b.append((t1 - t0) / 1e3)
        t.append((t2 - t1) / 1e3)
        e.append((t3 - t2) / 1e3)
        if i % 64 == 0:
            time.sleep(0.0005)
    return {"begin_us": b, "tokens_us": t, "end_us": e}


def paced(m: wattmeter.Meter, seconds: float, streams: int, with_requests: bool) -> dict:
    """Every 20 ms each of the open streams reports a token; every 100 tokens
    a stream ends and a new one begins."""
    h = m._handle
    open_ids = [_native.request_begin(h, '{"model":"m","stream":true}') for _ in range(streams)] \
        if with_requests else []
    n_tok = [0] * len(open_ids)
    s0 = m.snapshot()["self_cpu_s"]
    t0 = time.monotonic()
    calls = 0
    nxt = t0
    while time.monotonic() - t0 < seconds:
        for i, rid in enumerate(open_ids):
            _native.request_tokens(h, rid, 1)
            calls += 1
            n_tok[i] += 1
            if n_tok[i] == 100:
                _native.request_end(h, rid, '{"prompt_tokens":10}')
                open_ids[i] = _native.request_begin(h, '{"model":"m","stream":true}')
                n_tok[i] = 0
                calls += 2
        nxt += 0.02
        time.sleep(max(0.0, nxt - time.monotonic()))
    wall = time.monotonic() - t0
    for rid in open_ids:
        _native.request_end(h, rid, None)
    s1 = m.snapshot()["self_cpu_s"]
    return {"wall_s": wall, "calls": calls, "meter_cpu_s": s1 - s0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--requests", type=int, default=100000)
    a = ap.parse_args()
    mach = benchlib.machine()
    data: dict = {"machine": mach, "args": vars(a)}
    with tempfile.TemporaryDirectory() as tmp, benchlib.FakeRaplProc(os.path.join(tmp, "sys"),
                                                                    max_range_uj=262_143_328_850) as fake:
        b, t, e = [], [], []
        for r in range(a.repeats):
            with wattmeter.Meter(os.path.join(tmp, f"c{r}"), 0.5, sysfs_root=fake.root, no_gpu=True) as m:
                c = call_costs(m, a.calls // 3)
            b += c["begin_us"]
            t += c["tokens_us"]
            e += c["end_us"]
        data["call_us"] = {k: {"stats": benchlib.stats(v), "p99": benchlib.percentile(v, 99)}
                           for k, v in (("begin", b), ("tokens", t), ("end", e))}
        runs_r, runs_0 = [], []
        for r in range(a.repeats):
            for with_requests in (False, True):
                with wattmeter.Meter(os.path.join(tmp, f"p{r}{int(with_requests)}"), 0.5, sysfs_root=fake.root,
                                     no_gpu=True) as m:
                    res = paced(m, a.seconds, a.streams, with_requests)
                (runs_r if with_requests else runs_0).append(res)
        data["load"] = {"runs_requests": runs_r, "runs_none": runs_0,
                        "calls_per_s": benchlib.stats([x["calls"] / x["wall_s"] for x in runs_r]),
                        "meter_core_share": benchlib.stats([x["meter_cpu_s"] / x["wall_s"] for x in runs_r]),
                        "meter_core_share_none": benchlib.stats([x["meter_cpu_s"] / x["wall_s"] for x in runs_0])}
        d = os.path.join(tmp, "many")
        with wattmeter.Meter(d, 0.05, proc_period=0.05, sysfs_root=fake.root, no_gpu=True) as m:
            h = m._handle
            rss, heap = [], []
            for i in range(a.requests):
                rid = _native.request_begin(h, '{"model":"m"}')
                _native.request_tokens(h, rid, 2)
                _native.request_end(h, rid, '{"prompt_tokens":3,"completion_tokens":2}')
                if i % (a.requests // 10) == 0:
                    m.flush_requests(60)
                    rss.append(benchlib.read_status_kb(os.getpid(), "VmRSS"))
                    heap.append(heap_in_use_kb())
            m.flush_requests(60)
        stats = m.results.request_stats()
        data["many"] = {"requests": stats["count"], "rss_kb_every_tenth": rss,
                      "heap_in_use_kb_every_tenth": heap,
                        "conservation": stats["conservation"]}
    c, ld, mn = data["call_us"], data["load"], data["many"]
    ok = all(v["ok"] for v in mn["conservation"].values())
    md = [f"# Requests: cost per call, {a.streams} streams, {a.requests} requests — {benchlib.stamp()}", "",
          benchlib.machine_md(mach), "",
          "Median (min–max) over the repeats. Python binding included in the caller's cost.", "",
          "| measure | result |", "|---|---|",
          f"| request_begin (µs) | {benchlib.fmt(c['begin']['stats'])}, p99 {c['begin']['p99']:.3g} |",
          f"| request_tokens (µs) | {benchlib.fmt(c['tokens']['stats'])}, p99 {c['tokens']['p99']:.3g} |",
          f"| request_end (µs) | {benchlib.fmt(c['end']['stats'])}, p99 {c['end']['p99']:.3g} |",
          f"| request calls per second sustained ({a.streams} streams) | {benchlib.fmt(ld['calls_per_s'])} |",
          f"| meter threads' CPU with the streams (share of one core) | {benchlib.fmt(ld['meter_core_share'], 100)} % |",
          f"| meter threads' CPU, no requests | {benchlib.fmt(ld['meter_core_share_none'], 100)} % |",
          f"| {mn['requests']} requests: VmRSS at each tenth (kB) | {', '.join(str(x) for x in mn['rss_kb_every_tenth'])} |",
          f"| the same: heap in use after the flush (kB, mallinfo2) | {', '.join(str(x) for x in mn['heap_in_use_kb_every_tenth'])} |",
          f"| Σ requests + idle = the server's energy, every device | {'yes' if ok else 'NO'} |",
          ""]
    base = os.path.join(HERE, "results", f"requests-{benchlib.stamp()}-{mach['host']}")
    benchlib.write_results(base, "\n".join(md) + "\n", data)
    print("\n".join(md))
    print(json.dumps(mn["conservation"]))
    print(f"wrote {base}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
