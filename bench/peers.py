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
PY_TOOLS = ["wattmeter-py", "codecarbon-machine", "codecarbon-process", "zeus", "carbontracker", "eco2ai",
            "perun", "aipowermeter"]
PERIODLESS = {"zeus"}  # reads counters at window ends; no sampling period
PKG0 = "intel-rapl:0/energy_uj"  # the file whose reads give a tool's real sampling rate ...
MMIO0 = "intel-rapl-mmio:0/energy_uj"  # ... or its mmio copy, which CodeCarbon prefers
JOBS_S = {"30 s": 30.0, "5 min": 300.0, "1 h": 3600.0}


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


def truth_rates(fake: bl.FakeRaplProc) -> dict:
    """Watts of each device as the fixture defines them (packages, DRAM, psys)."""
    out = {"pkg": 0.0, "dram": 0.0, "psys": 0.0}
    for z in fake.info["zones"]:
        d = {"cpu": "pkg", "dram": "dram", "psys": "psys"}.get(z.get("device"))
        if d:
            out[d] += z["rate_w"]
    return out


def run_driver(tool: str, period: float, seconds: float, workers: int, tmp: str, warm: float,
               reads: bl.ReadCounter) -> dict:
    out = os.path.join(tmp, f"drv-{tool}-{time.monotonic_ns()}.json")
    cmd = [VENV_PY, DRIVER, "--tool", tool, "--period", str(period), "--seconds", str(seconds),
           "--workers", str(workers), "--warm", str(warm), "--json-out", out]
    reads.reset()
    with open(os.path.join(tmp, f"{tool}.log"), "a") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=log)
        _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not os.path.exists(out):
        raise RuntimeError(f"{tool} failed (exit {os.waitstatus_to_exitcode(status)}); see log")
    with open(out) as f:
        d = json.load(f)
    os.unlink(out)
    ph, w = d["phases"], d["workers_cpu_s"]
    total = ru.ru_utime + ru.ru_stime - w
    window = ph["t_stop_call"] - ph["t_started"]
    steady_dt = ph["worked"]["t"] - ph["working"]["t"]
    steady = (ph["worked"]["total"] - w - ph["working"]["total"]) / steady_dt
    # real rate: reads of package-0 while the job runs in steady state
    n_reads = max(reads.count(f, ph["working"]["t"], ph["worked"]["t"]) for f in (PKG0, MMIO0))
    rate = max(reads.rate_hz(f, ph["working"]["t"], ph["worked"]["t"]) for f in (PKG0, MMIO0))
    return {"total": total, "steady_cpu_s_per_s": steady, "window_s": window,
            "fixed": total - steady * window, "maxrss_kb": ph["stopped"]["self_maxrss_kb"],
            "helpers_rss_kb": ph["working"]["live_rss_kb"], "helpers": ph["working"]["n_live"],
            "reads_pkg0": n_reads, "real_rate_hz": rate,
            "reads_all": len(reads.events), "reported": d["extra"], "wall_s": d["wall_s"]}


def run_cli(period: float, seconds: float, workers: int, tmp: str, reads: bl.ReadCounter) -> dict:
    out = os.path.join(tmp, f"wmrec-{time.monotonic_ns()}")
    wl = [VENV_PY, DRIVER, "--tool", "none", "--period", str(period), "--seconds", str(seconds),
          "--workers", str(workers)]
    reads.reset()
    r = bl.run_cli(out, ["--period", str(period), "--proc-period", str(period)], seconds, workload_cmd=wl)
    sys.path.insert(0, bl.BENCH)
    from peer_driver import wattmeter_energy
    rep = wattmeter_energy(out)
    rec = bl.read_recording(out)
    shutil.rmtree(out, ignore_errors=True)
    t, c = rec["t_s"], rec["self_cpu_series"]
    k = next((i for i, x in enumerate(t) if x >= min(3.0, seconds / 3)), 0)
    steady = (c[-2] - c[k]) / (t[-2] - t[k]) if len(t) > k + 2 and t[-2] > t[k] else float("nan")
    dur = r["duration_s"]
    mk = r["workload_marks"]
    n_reads = max(reads.count(f, mk["t_working"], mk["t_worked"]) for f in (PKG0, MMIO0))
    rate = max(reads.rate_hz(f, mk["t_working"], mk["t_worked"]) for f in (PKG0, MMIO0))
    return {"total": r["wm_cpu_s"], "steady_cpu_s_per_s": steady, "window_s": dur,
            "fixed": r["wm_cpu_s"] - steady * dur, "hwm_kb": r["wm_hwm_kb"], "helpers": 0,
            "reads_pkg0": n_reads, "real_rate_hz": rate, "reads_all": len(reads.events),
            "samples": r["samples"], "reported": rep, "cpu_method": r["methods"].get("cpu")}


def add_accuracy(r: dict, rates: dict) -> None:
    rep, win = r["reported"], r["window_s"]
    r["truth_j"] = {k: v * win for k, v in rates.items()}
    err = {}
    for dev, key in (("pkg", "pkg_j"), ("dram", "dram_j"), ("psys", "psys_j"), ("pkg_only", "pkg_only_j")):
        v = rep.get(key)
        tr = r["truth_j"]["pkg" if dev == "pkg_only" else dev]
        if dev == "pkg" and rep.get("combined"):
            tr = r["truth_j"]["pkg"] + r["truth_j"]["dram"]  # one figure for CPU and DRAM together
        err[dev] = None if v is None or tr == 0 else 100.0 * (v - tr) / tr
    r["error_pct"] = err
    # the same against the duration the tool says it measured (its window may
    # start before start() returns or end after stop() is called)
    own = rep.get("own_duration_s")
    pk = rep.get("pkg_only_j", rep.get("pkg_j"))
    if own and pk is not None and not rep.get("combined"):
        r["pkg_error_vs_own_duration_pct"] = 100.0 * (pk - rates["pkg"] * own) / (rates["pkg"] * own)


def in_namespace(a) -> dict:
    work = tempfile.mkdtemp(prefix="wm-peers-")
    fake = bl.FakeRaplProc(os.path.join(work, "sys"), max_range_uj=a.max_range_uj)
    rates = truth_rates(fake)
    results: dict = {}
    errors: dict = {}
    reads = None
    try:
        mount_fake_powercap(fake.root, work)
        # os.walk does not follow links (the subsystem links loop back)
        reads = bl.ReadCounter([os.path.join(dp, "energy_uj") for dp, _, fs in
                                os.walk(os.path.join(fake.root, "devices", "virtual", "powercap"))
                                if "energy_uj" in fs])
        configs = [("none", a.periods[0])] if a.baseline else []
        for p in a.periods:
            configs.append(("wattmeter-cli", p))
            for t in a.tools:
                if t in PERIODLESS and p != a.periods[0]:
                    continue
                configs.append((t, p))
        for k in range(a.repeats):
            for tool, p in configs:
                key = tool if tool in PERIODLESS or tool == "none" else f"{tool}@{p:g}"
                if key in errors:
                    continue
                try:
                    if tool == "wattmeter-cli":
                        r = run_cli(p, a.seconds, a.workers, work, reads)
                    else:
                        r = run_driver(tool, p, a.seconds, a.workers, work, a.warm if tool != "none" else 0.0,
                                       reads)
                except Exception as e:  # noqa: BLE001 - a peer that fails is reported, not dropped
                    log = os.path.join(work, f"{tool}.log")
                    tail = open(log).read()[-1500:] if os.path.exists(log) else ""
                    errors[key] = f"{e}\n{tail}"
                    print(f"  {key}: FAILED: {e}", flush=True)
                    continue
                if tool != "none":
                    add_accuracy(r, rates)
                results.setdefault(key, []).append(r)
                e = r.get("error_pct", {})
                print(f"  [{k + 1}/{a.repeats}] {key}: total {r['total']:.3f} s, steady "
                      f"{r['steady_cpu_s_per_s'] * 1e3:.3f} ms/s, {r['real_rate_hz']:.2f} Hz real, "
                      f"pkg err {e.get('pkg')}, dram err {e.get('dram')}", flush=True)
    finally:
        if reads:
            reads.close()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"runs": results, "errors": errors, "rates_w": rates, "max_range_uj": a.max_range_uj, "warm": a.warm}


def summarise(data: dict) -> dict:
    """Per tool@period: steady cost, fixed cost, whole-run cost for JOBS_S, per real sample."""
    runs = data["runs"]
    base = runs.get("none", [])
    b_steady = bl.stats([r["steady_cpu_s_per_s"] for r in base])["median"] if base else 0.0
    b_fixed = bl.stats([r["fixed"] for r in base])["median"] if base else 0.0
    b_rss = bl.stats([r["maxrss_kb"] for r in base])["median"] if base else 0.0
    out = {}
    for key, rs in runs.items():
        if key == "none":
            continue
        cli = key.startswith("wattmeter-cli")
        steady = [r["steady_cpu_s_per_s"] - (0 if cli else b_steady) for r in rs]
        fixed = [r["fixed"] - (0 if cli else b_fixed) for r in rs]
        rate = [r["real_rate_hz"] for r in rs]
        rss = [r["hwm_kb"] / 1024 if cli else (r["maxrss_kb"] - b_rss + r["helpers_rss_kb"]) / 1024 for r in rs]
        o = {"steady_ms_per_s": bl.stats([x * 1e3 for x in steady]), "fixed_s": bl.stats(fixed),
             "real_rate_hz": bl.stats(rate),
             "ms_per_real_sample": bl.stats([x * 1e3 / h for x, h in zip(steady, rate) if h > 0]),
             "rss_mib": bl.stats(rss), "helpers": max((r.get("helpers", 0) for r in rs), default=0),
             "whole_run_s": {j: bl.stats([f + s * T for f, s in zip(fixed, steady)]) for j, T in JOBS_S.items()},
             "error_pct": {d: bl.stats([r["error_pct"][d] for r in rs if r["error_pct"].get(d) is not None])
                           for d in ("pkg", "dram", "psys", "pkg_only")},
             "reported_example": rs[0]["reported"]}
        out[key] = o
    return out


def overhead_table(summary: dict, errors: dict, periods) -> str:
    """The split: steady (while running) and fixed (per run), whole runs derived."""
    jobs = list(JOBS_S)
    lines = ["| tool @ nominal period | real rate, Hz (reads of package-0) | steady CPU, ms per s | CPU per real "
             "sample, ms | × ours per sample | fixed CPU per run, s | " +
             " | ".join(f"whole {j} job, CPU s | × ours" for j in jobs) + " | extra peak RSS, MiB | helper processes |",
             "|---" * (8 + 2 * len(jobs)) + "|"]

    def ours(p: float) -> dict:
        return summary.get(f"wattmeter-cli@{p:g}", {})

    for p in periods:
        o = ours(p)
        for key, s in summary.items():
            if not (key.endswith(f"@{p:g}") or (key in PERIODLESS and p == periods[0])):
                continue
            rps = s["ms_per_real_sample"]["median"] / o["ms_per_real_sample"]["median"] if o else float("nan")
            cells = []
            for j in jobs:
                r = s["whole_run_s"][j]["median"] / o["whole_run_s"][j]["median"] if o else float("nan")
                cells.append(f"{bl.fmt(s['whole_run_s'][j])} | {r:.3g}×")
            name = key if "@" in key else f"{key} (no period; vs CLI @{p:g})"
            lines.append(f"| {name} | {bl.fmt(s['real_rate_hz'])} | {bl.fmt(s['steady_ms_per_s'])} | "
                         f"{bl.fmt(s['ms_per_real_sample'])} | {rps:.3g}× | {bl.fmt(s['fixed_s'])} | " +
                         " | ".join(cells) + f" | {bl.fmt(s['rss_mib'])} | {s['helpers']} |")
    for key, e in errors.items():
        lines.append(f"| {key} | failed: {e.splitlines()[0][:120]} |" + " |" * (7 + 2 * len(jobs)))
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--periods", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--tools", nargs="+", default=PY_TOOLS)
    ap.add_argument("--max-range-uj", type=int, default=262143328850, help="fake counters' range (default: "
                    "a real package's 262 kJ)")
    ap.add_argument("--warm", type=float, default=0.0, help="construct each tool this long before its window")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
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
    summary = summarise(data)
    md = overhead_table(summary, data["errors"], a.periods)
    print(md)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"summary": summary, "errors": data["errors"], "runs": data["runs"], "rates_w": data["rates_w"],
                       "args": vars(a), "markdown": md}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
