#!/usr/bin/env python3
"""peers — what wattmeter and its peers cost while measuring the same job.

Every tool measures the same workload (bench/peer_driver.py: 2 worker
processes burning CPU in a Python loop for --seconds; the driver process only
waits) at the same period, and reads the same fake RAPL counters at the real
path /sys/class/powercap:

  the script re-executes itself under `unshare -m --propagation private`
  (root needed); in that private mount namespace it starts
  tests/fixtures/fake_rapl.py on a tree in a temporary folder, mounts a
  tmpfs over /sys/class (after bind-mounting every original /sys/class entry
  back in place) or over /sys/class/powercap where that exists, and
  bind-mounts each of the fake tree's class/powercap entries there as a plain
  directory. Nothing outside the namespace sees any of it.

Cost of a tool (everything the parent can see, in CPU seconds):
  total  = wait4 rusage of the driver process (its threads and every child it
           reaped, including helper processes a tool started) − the workers'
           exact CPU (each reaped with wait4 by the driver);
  phases = the same split at the driver's phase boundaries (getrusage SELF +
           CHILDREN + live unreaped descendants from /proc): import+start,
           running (while the workers run), stop+exit;
  and the tool's figure is that minus the same figure of the baseline run
  (no tool), so Python's own start-up is not charged to anyone.
  wattmeter CLI: `wattmeter run -q --period P --proc-period P -- <driver
  --tool none>`; its cost = wait4 rusage of wattmeter − the driver's whole
  self-reported CPU; running = the sampler's self.cpu_s.
Peak RSS: in-process tools: the driver's ru_maxrss − the baseline's, plus the
RSS of the tool's live helper processes; wattmeter CLI: its VmHWM.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

VENV_PY = os.path.join(bl.BENCH, ".venv-peers", "bin", "python")
DRIVER = os.path.join(bl.BENCH, "peer_driver.py")
PY_TOOLS = ["wattmeter-py", "codecarbon", "zeus", "carbontracker", "eco2ai"]
PERIODLESS = {"zeus"}  # reads counters at window ends; no sampling period


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def mount_fake_powercap(fake_root: str, work: str) -> None:
    """Makes /sys/class/powercap show the fake tree (inside our namespace)."""
    target = "/sys/class/powercap"
    if os.path.isdir(target):
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "wm-bench-powercap", target)
    else:
        orig = os.path.join(work, "origclass")
        os.makedirs(orig)
        sh("mount", "--bind", "/sys/class", orig)
        sh("mount", "-t", "tmpfs", "-o", "mode=755", "wm-bench-class", "/sys/class")
        for e in sorted(os.listdir(orig)):
            os.mkdir(os.path.join("/sys/class", e))
            sh("mount", "--bind", os.path.join(orig, e), os.path.join("/sys/class", e))
        os.mkdir(target)
    # the kernel's <type>/subsystem link back to the class (CodeCarbon looks
    # for intel-rapl/subsystem): absolute, as it must resolve inside the mount
    for t in glob.glob(os.path.join(fake_root, "devices", "virtual", "powercap", "*")):
        if not os.path.lexists(os.path.join(t, "subsystem")):
            os.symlink(target, os.path.join(t, "subsystem"))
    for e in sorted(os.listdir(os.path.join(fake_root, "class", "powercap"))):
        real = os.path.realpath(os.path.join(fake_root, "class", "powercap", e))
        os.mkdir(os.path.join(target, e))
        sh("mount", "--bind", real, os.path.join(target, e))
    if not os.path.exists("/sys/class/powercap/intel-rapl:0/energy_uj"):
        raise RuntimeError("fake powercap mount failed")


def phase_costs(d: dict) -> dict:
    ph = d["phases"]
    w = d["workers_cpu_s"]
    return {
        "import_start": ph["started"]["total"] - ph["start"]["total"],
        "running": ph["worked"]["total"] - ph["started"]["total"] - w,
        "stop": ph["stopped"]["total"] - ph["worked"]["total"],
        "maxrss_kb": ph["stopped"]["self_maxrss_kb"],
        "helpers_rss_kb": ph["working"]["live_rss_kb"],
        "helpers": ph["working"]["n_live"],
    }


def run_driver(tool: str, period: float, seconds: float, workers: int, tmp: str) -> dict:
    out = os.path.join(tmp, f"drv-{tool}-{time.monotonic_ns()}.json")
    cmd = [VENV_PY, DRIVER, "--tool", tool, "--period", str(period), "--seconds", str(seconds),
           "--workers", str(workers), "--json-out", out]
    with open(os.path.join(tmp, f"{tool}.log"), "a") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=log)
        _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(out):
        raise RuntimeError(f"{tool} failed (exit {os.waitstatus_to_exitcode(status)}); see log")
    with open(out) as f:
        d = json.load(f)
    os.unlink(out)
    total = ru.ru_utime + ru.ru_stime - d["workers_cpu_s"]
    c = phase_costs(d)
    c["total"] = total
    c["exit"] = total - (c["import_start"] + c["running"] + c["stop"]) - d["phases"]["start"]["total"]
    c["extra"] = d["extra"]
    c["wall_s"] = d["wall_s"]
    return c


def run_cli(period: float, seconds: float, workers: int, tmp: str) -> dict:
    out = os.path.join(tmp, f"wmrec-{time.monotonic_ns()}")
    wl = [VENV_PY, DRIVER, "--tool", "none", "--period", str(period), "--seconds", str(seconds),
          "--workers", str(workers)]
    r = bl.run_cli(out, ["--period", str(period), "--proc-period", str(period)], seconds, workload_cmd=wl)
    shutil.rmtree(out, ignore_errors=True)
    return {"total": r["wm_cpu_s"], "running": r["self_cpu_s"], "import_start": r["wm_cpu_s"] - r["self_cpu_s"],
            "stop": 0.0, "exit": 0.0, "hwm_kb": r["wm_hwm_kb"], "samples": r["samples"],
            "duration_s": r["duration_s"], "cpu_method": r["methods"].get("cpu")}


def in_namespace(a) -> dict:
    work = tempfile.mkdtemp(prefix="wm-peers-")
    fake = bl.FakeRaplProc(os.path.join(work, "sys"), max_range_uj=262143328850)
    results: dict = {}
    errors: dict = {}
    try:
        mount_fake_powercap(fake.root, work)
        configs = [("none", 0.0)]
        for p in a.periods:
            configs.append(("wattmeter-cli", p))
            for t in a.tools:
                if t in PERIODLESS and p != a.periods[0]:
                    continue
                configs.append((t, p))
        for k in range(a.repeats):
            for tool, p in configs:
                key = f"{tool}@{p:g}" if tool not in PERIODLESS and tool != "none" else tool
                if key in errors:
                    continue
                try:
                    if tool == "wattmeter-cli":
                        r = run_cli(p, a.seconds, a.workers, work)
                    else:
                        r = run_driver(tool, p or 1.0, a.seconds, a.workers, work)
                except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not dropped
                    log = os.path.join(work, f"{tool}.log")
                    tail = open(log).read()[-1500:] if os.path.exists(log) else ""
                    errors[key] = f"{e}\n{tail}"
                    print(f"  {key}: FAILED: {e}", flush=True)
                    continue
                results.setdefault(key, []).append(r)
                print(f"  [{k + 1}/{a.repeats}] {key}: total {r['total']:.3f} s, running {r['running']:.4f} s",
                      flush=True)
    finally:
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"runs": results, "errors": errors}


def summarise(data: dict, seconds: float) -> dict:
    runs = data["runs"]
    base = runs.get("none", [])
    if not base:
        return {}
    b = {k: bl.stats([r[k] for r in base])["median"] for k in ("total", "import_start", "running", "stop", "exit")}
    b_rss = bl.stats([r["maxrss_kb"] for r in base])["median"]
    out = {}
    for key, rs in runs.items():
        if key == "none":
            continue
        if key.startswith("wattmeter-cli"):
            total = [r["total"] for r in rs]
            running = [r["running"] for r in rs]
            fixed = [r["import_start"] for r in rs]
            rss = [r["hwm_kb"] / 1024 for r in rs]
        else:
            total = [r["total"] - b["total"] for r in rs]
            running = [r["running"] - b["running"] for r in rs]
            fixed = [t - u for t, u in zip(total, running)]
            rss = [(r["maxrss_kb"] - b_rss + r["helpers_rss_kb"]) / 1024 for r in rs]
        out[key] = {
            "total_s": bl.stats(total),
            "running_s_per_min": bl.stats([x * 60 / seconds for x in running]),
            "total_s_per_min": bl.stats([x * 60 / seconds for x in total]),
            "fixed_s": bl.stats(fixed),
            "rss_mib": bl.stats(rss),
            "helpers": max((r.get("helpers", 0) for r in rs), default=0),
        }
    return out


def table(summary: dict, errors: dict, periods) -> str:
    lines = ["| tool @ period | running cost, CPU s per minute | × wattmeter CLI | start+stop+exit, CPU s | "
             f"whole run per minute, CPU s | × wattmeter CLI | extra peak RSS, MiB | helper processes |",
             "|---|---|---|---|---|---|---|---|"]

    def ours(key: str, p: float, field: str) -> float:
        s = summary.get(f"wattmeter-cli@{p:g}")
        return s[field]["median"] if s else float("nan")

    for p in periods:
        for key, s in summary.items():
            if key.endswith(f"@{p:g}") or (key in PERIODLESS and p == periods[0]):
                pp = p
                r1 = s["running_s_per_min"]["median"] / ours(key, pp, "running_s_per_min")
                r2 = s["total_s_per_min"]["median"] / ours(key, pp, "total_s_per_min")
                name = key if "@" in key else f"{key} (no period; vs CLI @{p:g})"
                lines.append(f"| {name} | {bl.fmt(s['running_s_per_min'])} | {r1:.3g}× | {bl.fmt(s['fixed_s'])} | "
                             f"{bl.fmt(s['total_s_per_min'])} | {r2:.3g}× | {bl.fmt(s['rss_mib'])} | {s['helpers']} |")
    for key, e in errors.items():
        lines.append(f"| {key} | failed: {e.splitlines()[0][:120]} | | | | | | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--periods", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--tools", nargs="+", default=PY_TOOLS)
    ap.add_argument("--json-out", help="write the summary and raw runs here (JSON)")
    ap.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not os.path.exists(VENV_PY):
        raise SystemExit(f"no {VENV_PY}: bash bench/run.sh creates it")
    if not a.in_namespace:
        if os.geteuid() != 0:
            raise SystemExit("peers.py needs root (a private mount namespace over /sys/class/powercap)")
        cmd = ["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
               "--in-namespace", *sys.argv[1:]]
        return subprocess.call(cmd)
    data = in_namespace(a)
    summary = summarise(data, a.seconds)
    md = table(summary, data["errors"], a.periods)
    print(md)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"summary": summary, "errors": data["errors"], "runs": data["runs"],
                       "args": vars(a), "markdown": md}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
