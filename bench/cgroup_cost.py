#!/usr/bin/env python3
"""cgroup_cost — the steady sampler cost of `run --cgroup PATH` against the
process-tree mode (`--pid`), at 10, 100 and 1,000 measured processes.

A spawner (bench/workload.py --main sleep --child-mode sleep --children N)
is started in a cgroup of its own below the cgroup v2 mount (root needed).
While it lives, the same workload-free command (`sleep S` in Python) is run
twice, every sample a process-tier sample, memory reads off:

    tree:    wattmeter run -q --period 0.1 --proc-period 0.1 --no-memory --pid SPAWNER -- sleep S
    cgroup:  wattmeter run -q --period 0.1 --proc-period 0.1 --no-memory --cgroup CG -- sleep S

Per sample = the sampler thread's CPU (meta.json self.cpu_s) / samples. The
cgroup mode reads cgroup.procs and cpu.stat each process tick on top of the
per-process stat reads (the per-process table still needs them), so the
figure shows what the exact cgroup CPU costs beyond the tree.
Writes bench/results/cgroup_cost-<stamp>.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def v2_mount() -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    sys.exit("cgroup_cost: no cgroup v2 hierarchy is mounted")


def sleep_cmd(seconds: float) -> list:
    return [sys.executable, "-c",
            "import sys,time,json,resource;time.sleep(float(sys.argv[1]));"
            "r=resource.getrusage(resource.RUSAGE_SELF);"
            "open(sys.argv[3],'w').write(json.dumps({'cpu_s':r.ru_utime+r.ru_stime,"
            "'self_maxrss_kb':r.ru_maxrss,'children_maxrss_kb':0}));import os;os._exit(0)", str(seconds)]


def run(repeats: int, seconds: float, ns=(10, 100, 1000), log=print) -> dict:
    if os.geteuid() != 0:
        sys.exit("cgroup_cost: needs root (it creates a cgroup)")
    mnt = v2_mount()
    tmp = tempfile.mkdtemp(prefix="wm-cgcost-")
    rows: dict = {}
    try:
        for n in ns:
            cg = os.path.join(mnt, f"wattmeter-bench-{os.getpid()}-{n}")
            os.mkdir(cg)
            sp = None
            try:
                # the spawner joins the cgroup before it forks its children
                sp = subprocess.Popen([sys.executable, bl.WORKLOAD, "--seconds", str(repeats * 2 * (seconds + 3) + 30),
                                       "--children", str(n), "--child-mode", "sleep", "--main", "sleep"],
                                      start_new_session=True,
                                      preexec_fn=lambda: open(os.path.join(cg, "cgroup.procs"), "w").write("0"))
                t_end = time.monotonic() + 60
                while time.monotonic() < t_end:
                    with open(os.path.join(cg, "cgroup.procs")) as f:
                        if len(f.read().split()) >= n + 1:
                            break
                    time.sleep(0.05)
                for k in range(repeats):
                    for mode, extra in (("tree", ["--pid", str(sp.pid)]), ("cgroup", ["--cgroup", cg])):
                        out = os.path.join(tmp, f"rec-{n}-{mode}-{k}")
                        r = bl.run_cli(out, ["--period", "0.1", "--proc-period", "0.1", "--no-memory", *extra],
                                       seconds, workload_cmd=sleep_cmd(seconds))
                        shutil.rmtree(out, ignore_errors=True)
                        x = {"us_per_sample": 1e6 * r["self_cpu_s"] / r["samples"],
                             "procs_measured": r["procs_per_proc_line"]}
                        rows.setdefault(f"{n}/{mode}", []).append(x)
                        log(f"  [{k + 1}/{repeats}] N={n} {mode}: {x['us_per_sample']:.0f} µs/sample, "
                            f"{x['procs_measured']:g} processes")
            finally:
                if sp:
                    os.killpg(sp.pid, signal.SIGKILL)
                    sp.wait()
                t_end = time.monotonic() + 30
                while time.monotonic() < t_end:
                    try:
                        os.rmdir(cg)
                        break
                    except OSError:
                        time.sleep(0.1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {k: {f: bl.stats([r[f] for r in rs]) for f in rs[0]} for k, rs in rows.items()}
    return {"summary": summary, "runs": rows}


def table(res: dict) -> str:
    s = res["summary"]
    lines = ["| processes | tree (--pid), µs/sample | --cgroup PATH, µs/sample | cgroup / tree |", "|---|---|---|---|"]
    ns = sorted({int(k.split("/")[0]) for k in s})
    for n in ns:
        t, c = s.get(f"{n}/tree"), s.get(f"{n}/cgroup")
        if not t or not c:
            continue
        lines.append(f"| {n} | {bl.fmt(t['us_per_sample'])} | {bl.fmt(c['us_per_sample'])} | "
                     f"{c['us_per_sample']['median'] / t['us_per_sample']['median']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    res = run(a.repeats, a.seconds)
    t = table(res)
    print(t)
    m = bl.machine()
    bl.write_results(os.path.join(bl.RESULTS, f"cgroup_cost-{bl.stamp()}"),
                     "# cgroup_cost\n\n" + bl.machine_md(m) + "\n" + t, {"machine": m, **res})
