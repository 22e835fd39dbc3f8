#!/usr/bin/env python3
"""workload — the job every benchmark measures. Standard library only.

A main Python process and N forked children, for a fixed wall time:

  --main busy|sleep     the main process burns CPU in a Python loop, or waits
  --children N          forked children ...
  --child-mode busy|light|sleep
                        ... that burn CPU, do 1 ms of work every 10 ms, or sleep

At the end the main process reaps its children and, with --rusage-out FILE,
writes its own CPU time plus its reaped children's (getrusage SELF and
CHILDREN, microsecond resolution) and peak RSS as JSON, then leaves with
os._exit(0): no interpreter teardown runs after the figures are taken, so a
parent that reaps this process with wait4 can subtract them exactly (to the
few hundred microseconds of kernel exit) from its own rusage.

The loops check the clock every few thousand iterations only, so the work
per second is the same whatever measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import time


def burn_until(deadline: float) -> int:
    n = 0
    x = 0
    while time.monotonic() < deadline:
        for i in range(2000):
            x = (x * 1103515245 + i) & 0xFFFFFFFF
        n += 1
    return n ^ (x & 1)


def light_until(deadline: float) -> None:
    while True:
        now = time.monotonic()
        if now >= deadline:
            return
        burn_until(min(deadline, now + 0.001))
        time.sleep(min(0.009, max(0.0, deadline - time.monotonic())))


def sleep_until(deadline: float) -> None:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.5))


MODES = {"busy": burn_until, "light": light_until, "sleep": sleep_until}


def run(seconds: float, children: int, child_mode: str, main_mode: str) -> None:
    deadline = time.monotonic() + seconds
    pids = []
    for _ in range(children):
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                MODES[child_mode](deadline)
            finally:
                os._exit(0)
        pids.append(pid)
    MODES[main_mode](deadline)
    for pid in pids:
        os.waitpid(pid, 0)


def rusage_json() -> dict:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self_cpu_s": s.ru_utime + s.ru_stime,
        "children_cpu_s": c.ru_utime + c.ru_stime,
        "cpu_s": s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime,
        "self_maxrss_kb": s.ru_maxrss,
        "children_maxrss_kb": c.ru_maxrss,
        "pid": os.getpid(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--children", type=int, default=3)
    ap.add_argument("--child-mode", choices=sorted(MODES), default="light")
    ap.add_argument("--main", choices=sorted(MODES), default="busy")
    ap.add_argument("--rusage-out", help="write the CPU time of this process and its children here")
    a = ap.parse_args()
    run(a.seconds, a.children, a.child_mode, a.main)
    if a.rusage_out:
        data = json.dumps(rusage_json()).encode()
        fd = os.open(a.rusage_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    os._exit(0)


if __name__ == "__main__":
    main()
