#!/usr/bin/env python3
"""report — runs every benchmark and writes bench/results/<date>-<host>.md/.json.

Called by bench/run.sh (which builds wattmeter, bench/floor.c and the peers'
venv first). --quick is a smoke version of about two minutes: short runs, one
repeat, fewer configurations; its figures are not for quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import overhead  # noqa: E402
import sampleprof as wm_profile  # noqa: E402
import rate  # noqa: E402
import scale  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="results base path (default bench/results/<date>-<host>)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["overhead", "rate", "scale", "peers", "profile", "core", "gpu"])
    a = ap.parse_args()
    q = a.quick
    t_start = time.monotonic()
    m = bl.machine()
    host = socket.gethostname()
    base = a.out or os.path.join(bl.RESULTS, f"{bl.stamp()}-{host}" + ("-quick" if q else ""))
    data: dict = {"machine": m, "quick": q, "wattmeter": bl.wattmeter_bin()}
    md = [f"# wattmeter benchmarks ({m['date_utc']}){' — QUICK smoke run, not for quoting' if q else ''}\n",
          bl.machine_md(m),
          f"- `bash bench/run.sh {' '.join(sys.argv[1:])}`; wattmeter CLI `{bl.wattmeter_bin()}`; every figure is "
          "the median (min–max) over the repeats; the machine is shared and noisy\n"]

    # ---- 1. peers: versions, overhead split, accuracy, equal work -----------------------------
    if "peers" not in a.skip:
        md.append(peers_section(base, q, data, log))

    # ---- 2. rate ---------------------------------------------------------------------------
    if "rate" not in a.skip:
        log("== sampling rate and jitter")
        r = rate.run(1 if q else 3, 1.5 if q else 4.0, periods=[0.1, 0.01, 0.001] if q else rate.PERIODS,
                     loads=("busy", "idle"), log=log)
        data["rate"] = r
        md.append("\n## 2. Sampling rate and jitter\n\n"
                  "`wattmeter run --sysfs-root FAKE --period P` (process tier 1 s, memory 10 s) around "
                  "`bench/workload.py` (busy: a Python busy loop + 3 light children; idle: all sleeping); "
                  "jitter = |interval − P| between consecutive `t_s`.\n\n" + rate.table(r) +
                  f"\nHighest rate sustained (≥ 95% of nominal, < 1% late): busy machine "
                  f"{rate.highest_sustained(r, 'busy')} s, idle machine {rate.highest_sustained(r, 'idle')} s.\n")

    # ---- 3 + 5. scale and floor ------------------------------------------------------------------
    if "scale" not in a.skip:
        log("== scale with the number of processes, and the floor")
        s = scale.run(1 if q else 3, 1.5 if q else 4.0, ns=(10, 100) if q else (10, 100, 1000), log=log)
        data["scale"] = s
        md.append("\n## 3. Scale (process tier) and 5. floor\n\n"
                  "`wattmeter run --period 0.1 --proc-period 0.1 --no-memory --pid SPAWNER -- sleep S`; "
                  "per sample = self.cpu_s / samples (every sample is a process-tier sample). Floor: "
                  "`bench/floor.c` doing only the reads (readdir of /proc, open+pread+close of every "
                  "<pid>/stat, /proc/stat, /proc/meminfo), at the same period (periodic) and flat out "
                  "(tight).\n\n" + scale.table(s))
        log("== the process tier against unrelated processes on the machine")
        u = scale.unrelated(1, 2.0 if q else 4.0, counts=(0, 1000) if q else (0, 1000, 2000, 3000, 5000),
                            default_seconds=5.0 if q else 15.0, log=log)
        data["unrelated"] = u
        md.append("\n### Against unrelated processes\n\n"
                  "The same tree (a spawner and 10 sleeping children) with N more sleeping processes on the "
                  "machine, not measured; method in bench/README.md (3, \"Against unrelated processes\").\n\n"
                  + scale.unrelated_table(u))

    # ---- 5b. where a counter sample's cost goes --------------------------------------------------
    if "profile" not in a.skip:
        log("== toward the floor: callgrind and strace of the counter tier")
        pr = wm_profile.run(1.0 if q else 2.0)
        data["profile"] = pr
        md.append("\n## 5b. Toward the floor: where a counter-tier sample goes\n\n" + wm_profile.table(pr) +
                  "\nReading it with the floor table above: the floor's reads are the same preads; what a "
                  "sample adds on top is in user space (the instructions above, a few µs) and in the kernel "
                  "(the system calls beyond the zone reads: the line's write, the thread-clock read for "
                  "self_cpu_s, the futex pair of the timed wait and the mutex hand-back, and the pread of the "
                  "mmio duplicate, read but not counted); the `tight + line write + thread clock` floor column "
                  "prices the first two, `wake-up alone` the timed wait.\n")

    # ---- 5c. the core before and after its rewrite -----------------------------------------------
    if "core" not in a.skip:
        log("== cost per sample: the core before its rewrite and now")
        cb = core_before_after(q, log)
        if cb:
            data["core_before_after"] = cb
            md.append(core_table(cb))

    # ---- 4. size (and the overhead at the defaults) --------------------------------------------
    if "overhead" not in a.skip:
        log("== overhead at the defaults and recording size")
        raw, res = overhead.run(1 if q else 5, 2.0 if q else 6.0, log=log)
        data["overhead"] = {"summary": res, "runs": raw}
        md.append("\n## 4. Size, and cost at the defaults\n\n"
                  "`bench/overhead.py` (see its own results file for the method): `wattmeter run` of a busy "
                  "Python loop + 3 light children.\n\n" + overhead.table(res))

    # ---- 7. GPU energy against the truth, on the mock NVML (bench/gpu_accuracy.py) -----------------
    if "gpu" not in a.skip:
        log("== GPU accuracy on the mock NVML (wattmeter and the peers)")
        gdir = os.path.dirname(base)
        r = subprocess.run([sys.executable, os.path.join(bl.BENCH, "gpu_accuracy.py"), "--build",
                            os.path.join(bl.REPO, "build-bench"), "--seconds", "3" if q else "10", "--out", gdir]
                           + (["--suffix", "-quick"] if q else []),
                           capture_output=True, text=True)
        got = [ln for ln in r.stdout.splitlines() if ln.startswith("wrote ")]
        if r.returncode == 0 and got:
            gmd = got[-1].split()[1]
            with open(gmd) as f:
                body = f.read().split("\n", 1)[1]
            data["gpu_accuracy"] = os.path.basename(gmd)[:-3] + ".json"
            md.append(f"\n## 7. GPU accuracy on the mock NVML (from `{os.path.basename(gmd)}`)\n" +
                      body.replace("\n## ", "\n### "))
        else:
            md.append(f"\n## 7. GPU accuracy on the mock NVML\n\nnot run: {(r.stderr or r.stdout)[-400:]}\n")

    # ---- 6. targets -------------------------------------------------------------------------------
    md.append("\n## 6. Targets (printed, not asserted)\n\n" + targets(data) + "\n")
    md.append(f"\nTotal bench time: {time.monotonic() - t_start:.0f} s. Load average at the end: "
              f"{', '.join('%.2f' % x for x in os.getloadavg())} (at the start: "
              f"{', '.join('%.2f' % x for x in m['loadavg_at_start'])}; {os.cpu_count()} cores shared with "
              f"other jobs).\n")
    text = "".join(md)
    bl.write_results(base, text, data)
    print(text)
    print(f"wrote {base}.md and .json")
    return 0


PEER_SCENARIOS = [  # (name, extra peers.py args): accuracy runs beyond the overhead runs
    ("realistic range, warm", ["--warm", "3"]),
    ("fast-wrapping, cold", ["--max-range-uj", "120000000"]),
    ("fast-wrapping, warm", ["--max-range-uj", "120000000", "--warm", "3"]),
]
ORDER = ["wattmeter-cli", "wattmeter-py", "codecarbon-machine", "codecarbon-process", "zeus", "carbontracker",
         "eco2ai", "perun", "aipowermeter"]
# what each does per sample (from its source, pinned versions; see bench/README.md)
BEHAVIOUR = {
    "wattmeter-cli": ("reads every zone (kept fds), device sums of package, DRAM, psys kept apart; mmio duplicate "
                      "read, not counted; per-process attribution on the process tier", "measured", "apart", "no"),
    "wattmeter-py": ("as the CLI, in a thread of the calling process", "measured", "apart", "no"),
    "codecarbon-machine": ("RAPL package zones (prefers the mmio copy of package-0); RAM power from a model of "
                           "installed memory; whole machine", "modelled", "not used", "no"),
    "codecarbon-process": ("as machine mode, CPU energy not scaled; RAM modelled from the process's share of "
                           "memory", "modelled", "not used", "no"),
    "zeus": ("reads each top-level zone at the window's ends; one poller process per zone watches for wraps; "
             "no per-process attribution", "measured", "counted as a CPU", "no"),
    "carbontracker": ("reads package and DRAM zones, sleeps 1 s, reads again; power = delta / 1 s; energy = "
                      "mean power x epoch time x PUE", "measured (combined with CPU)", "skipped", "no"),
    "eco2ai": ("no counter read: CPU power = TDP x the process's CPU share; RAM from memory used", "modelled",
               "not read", "no"),
    "perun": ("a monitoring subprocess reads package and DRAM zones every period", "measured", "skipped", "no"),
    "aipowermeter": ("a subprocess walks the RAPL tree, sleeps P, walks again (2 reads per interval), psutil "
                     "per-process CPU shares", "measured", "reported apart", "no"),
}


def peer_versions() -> dict:
    import peers
    out = {}
    try:
        r = subprocess.run([peers.VENV_PY, "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                           timeout=120)
        want = {"zeus", "codecarbon", "carbontracker", "eco2ai", "perun", "wattmeter", "pandas", "numpy", "psutil",
                "nvidia-ml-py"}
        for x in json.loads(r.stdout):
            if x["name"].lower() in want:
                out[x["name"].lower()] = x["version"]
    except Exception as e:  # noqa: BLE001
        out["error"] = repr(e)
    c = os.path.join(bl.BENCH, ".peers", "AIPowerMeter", "COMMIT")
    out["AIPowerMeter (GreenAI-Uppa/AIPowerMeter, git)"] = open(c).read().strip() if os.path.exists(c) else "absent"
    return out


def run_peers(args: list, pj: str) -> dict:
    rc = subprocess.call([sys.executable, os.path.join(bl.BENCH, "peers.py"), *args, "--json-out", pj])
    if rc == 0 and os.path.exists(pj):
        with open(pj) as f:
            d = json.load(f)
        os.unlink(pj)
        return d
    return {"summary": {}, "errors": {"peers.py": f"exit {rc}"}, "markdown": "peers.py failed\n"}


def tool_key(summary: dict, tool: str, period: str = "1") -> str:
    return tool if tool in summary else f"{tool}@{period}"


def err_cell(s: dict, dev: str) -> str:
    e = s.get("error_pct", {}).get(dev, {})
    if not e or not e.get("n"):
        return "—"
    worst = e["max"] if abs(e["max"]) >= abs(e["min"]) else e["min"]
    return f"{e['median']:+.2f}" + (f" (worst {worst:+.2f})" if e["n"] > 1 and abs(worst - e["median"]) > 0.05 else "")


def accuracy_table(scen: dict) -> str:
    names = list(scen)
    head = ("| tool | DRAM | psys | " + " | ".join(f"{n}: package / DRAM error, %" for n in names) + " |\n" +
            "|---" * (3 + len(names)) + "|\n")
    rows = []
    for t in ORDER:
        cells = []
        for n in names:
            sm = scen[n].get("summary", {})
            k = tool_key(sm, t)
            if k not in sm:
                err = scen[n].get("errors", {}).get(k)
                cells.append("failed" if err else "not run")
                continue
            s = sm[k]
            pkg = err_cell(s, "pkg")
            if t == "zeus":
                pkg += f"; packages only {err_cell(s, 'pkg_only')}"
            if t == "carbontracker":
                pkg = f"CPU+DRAM together, PUE removed: {pkg}"
            if t == "eco2ai":
                pkg = f"everything it reports (modelled) vs true package: {pkg}"
            cells.append(f"{pkg} / {err_cell(s, 'dram')}")
        b = BEHAVIOUR.get(t, ("", "", "", ""))
        rows.append(f"| {t} | {b[1]} | {b[2]} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def reported_table(scen: dict) -> str:
    """Each tool's own figures (first run of each scenario), against the truth."""
    lines = ["| scenario | tool | window, s | true package / DRAM / psys, J | reported package / DRAM / psys, J | "
             "its own duration, s | package error vs its own duration, % |", "|---|---|---|---|---|---|---|"]
    for n, d in scen.items():
        for t in ORDER:
            rs = d.get("runs", {}).get(tool_key(d.get("runs", {}), t))
            if not rs:
                continue
            r = rs[0]
            rep, tr = r["reported"], r["truth_j"]

            def f(v):
                return "—" if v is None else f"{v:.4g}"
            lines.append(f"| {n} | {t} | {r['window_s']:.3f} | {tr['pkg']:.4g} / {tr['dram']:.4g} / {tr['psys']:.4g} | "
                         f"{f(rep.get('pkg_j'))} / {f(rep.get('dram_j'))} / {f(rep.get('psys_j'))} | "
                         f"{f(rep.get('own_duration_s'))} | {f(r.get('pkg_error_vs_own_duration_pct'))} |")
    return "\n".join(lines) + "\n"


def behaviour_table(ov: dict) -> str:
    sm = ov.get("summary", {})
    lines = ["| tool | per sample | real rate at nominal 1 s, Hz | real rate at nominal 0.1 s, Hz |", "|---|---|---|---|"]
    for t in ORDER:
        r1 = sm.get(tool_key(sm, t, "1"), {}).get("real_rate_hz")
        r2 = sm.get(f"{t}@0.1", {}).get("real_rate_hz")
        lines.append(f"| {t} | {BEHAVIOUR.get(t, ('',))[0]} | {bl.fmt(r1) if r1 else '—'} | "
                     f"{bl.fmt(r2) if r2 else ('no period' if t == 'zeus' else '—')} |")
    return "\n".join(lines) + "\n"


def peers_section(base: str, q: bool, data: dict, log) -> str:
    log("== peers: overhead split and accuracy (realistic range, cold)")
    secs, reps = ("4", "1") if q else ("10", "2")
    common = ["--seconds", secs, "--repeats", reps]
    ov = run_peers(common + (["--periods", "1"] if q else ["--periods", "1", "0.1"]), base + ".peers.json")
    scen = {"realistic range, cold": ov}
    for name, extra in PEER_SCENARIOS:
        log(f"== peers: accuracy, {name}")
        scen[name] = run_peers(common + ["--periods", "1", "--no-baseline", *extra], base + ".acc.json")
    vers = peer_versions()
    data["peers"] = {"versions": vers, "overhead": ov, "accuracy": {k: v for k, v in scen.items()
                                                                     if k != "realistic range, cold"}}
    inst = os.path.join(bl.REPO, "build-bench", "peers-install-failures.txt")
    fails = open(inst).read().strip() if os.path.exists(inst) else ""
    rates = ov.get("rates_w", {})
    out = ["\n## 1. Peers: versions, accuracy, overhead split, equal work\n\n",
           "Versions (one venv, `bench/.venv-peers`, installed by `bench/run.sh`): " +
           ", ".join(f"{k} {v}" for k, v in vers.items()) + ".\n",
           (f"\nInstall failures: {fails}\n" if fails else ""),
           f"\nEvery tool reads the same fake RAPL tree (`tests/fixtures/fake_rapl.py`, layout intel-2pkg: two "
           f"packages with core/uncore/dram subzones, psys, and an mmio duplicate of package-0) laid over "
           f"`/sys/class/powercap` in a private mount namespace. True rates: packages {rates.get('pkg')} W, DRAM "
           f"{rates.get('dram')} W, psys {rates.get('psys')} W; truth = rate × the window (from the tool's start() "
           f"returning to its stop() being called; for the CLI, its own duration). The job: 2 workers burning CPU "
           f"for {secs} s, the driver process waiting. Realistic range: 262 kJ (a real package's); fast-wrapping: 120 J "
           f"(package-0 wraps every 4 s, psys every 1.7 s: every zone wraps slower than the 1 s period, so a "
           f"sampler at 1 s can follow every wrap). Cold: the tool is constructed and its window opened at once; warm: "
           f"constructed 3 s before its window opens. Period 1 s for everyone (Zeus has none). Median over "
           f"{reps} run(s), worst shown when it differs.\n\n### Accuracy: error against the truth, %\n\n",
           accuracy_table(scen),
           "\n\"—\": the tool reports no such figure. Zeus counts every top-level RAPL zone as a CPU by default "
           "(psys is intel-rapl:2 here), so its CPU figure is shown as it reports it, then with only the packages. "
           "CodeCarbon's DRAM figure is its RAM model (its `rapl_include_dram` is off by default). "
           "carbontracker reports one figure for CPU and DRAM together, multiplied by its PUE. eco2AI reads no "
           "counter: its figure is modelled from TDP and the calling process's CPU share.\n\n"
           "### Each tool's own figures (first run of each scenario)\n\n", reported_table(scen),
           "\n### Overhead, split: steady state and fixed cost per run\n\n"
           "Steady CPU = the tool's CPU per second while the job runs, from 3 s after its window opened to the "
           "job's end (driver: getrusage SELF + CHILDREN + live helper processes, minus the workers' exact CPU, "
           "minus the baseline run's; CLI: its sampler thread's clock from the recording). Fixed = the whole "
           "run's CPU (wait4) − steady × window: import, set-up, start-up transients, stop, exit. Whole job of "
           "length T = fixed + steady × T. Real rate = reads of package-0's energy_uj (or its mmio copy, "
           "whichever the tool reads more) per second in the steady window, counted by inotify IN_ACCESS on the "
           "fixture's files; CPU per real sample = steady CPU / real rate, compared with ours at the same "
           "nominal period (equal work per sample rather than equal nominal period).\n\n",
           ov.get("markdown", ""),
           "\n### What each does per sample, and its real rate\n\n", behaviour_table(ov)]
    errs = {**ov.get("errors", {})}
    for n, d in scen.items():
        for k, v in d.get("errors", {}).items():
            errs[f"{k} ({n})"] = v
    if errs:
        out.append("\nFailed runs (first line of the error):\n\n" +
                   "".join(f"- {k}: `{v.splitlines()[0][:200]}`\n" for k, v in errs.items()))
    return "".join(out)


OLD = os.path.join(bl.REPO, "build-bench", "core-before")


def core_before_after(q: bool, log) -> dict:
    """Cost per sample of the CLI built from BEFORE_REF (bench/run.sh) and of this tree, interleaved."""
    import tempfile
    import shutil
    old_rel, old_cg = os.path.join(OLD, "release", "wattmeter"), os.path.join(OLD, "cg", "wattmeter")
    if not os.path.exists(old_rel):
        return {}
    ref = open(os.path.join(OLD, "REF")).read().strip() if os.path.exists(os.path.join(OLD, "REF")) else "?"
    head = subprocess.run(["git", "-C", bl.REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    bins = {"before": (old_rel, old_cg, ref), "now": (bl.wattmeter_bin(), wm_profile.ensure_build(), head)}
    reps, secs = (1, 2.0) if q else (3, 4.0)
    rows: dict = {}
    tmp = tempfile.mkdtemp(prefix="wm-core-")
    try:
        with bl.FakeRaplProc(os.path.join(tmp, "sys"), max_range_uj=262143328850) as fake:
            for k in range(reps):
                for label, (rel, _, _) in bins.items():
                    for tier, args in (("counter tier, period 0.01 s", ["--sysfs-root", fake.root, "--period", "0.01",
                                                                        "--proc-period", "1000", "--no-memory"]),
                                       ("process tier, --pid 1, period 0.1 s", ["--sysfs-root", fake.root,
                                        "--period", "0.1", "--proc-period", "0.1", "--no-memory", "--pid", "1"])):
                        r = scale.ours(os.path.join(tmp, f"rec-{label}-{k}-{len(rows)}"), args, secs, wm_bin=rel)
                        us = 1e6 * r["self_cpu_s"] / r["samples"]
                        # steady: from 1 s in to the last sample before the stop sample
                        t, c = r["t_s"], r["self_cpu_series"]
                        k0 = next((i for i, x in enumerate(t) if x >= 1.0), 0)
                        steady = (1e6 * (c[-2] - c[k0]) / (len(t) - 2 - k0)
                                  if len(t) - 2 > k0 and c[-2] is not None and c[k0] is not None else float("nan"))
                        rows.setdefault(f"{tier}|{label}", []).append(
                            {"us_per_sample": us, "steady_us_per_sample": steady, "bytes_per_sample": r["samples_bytes"] / r["samples"],
                             "wm_cpu_ms": 1e3 * r["wm_cpu_s"], "hwm_mib": r["wm_hwm_kb"] / 1024})
                        log(f"  [{k + 1}/{reps}] {label} {tier}: {us:.1f} µs/sample, steady {steady:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prof = {label: wm_profile.run(1.0 if q else 2.0, wm_bin=cg, label=label) for label, (_, cg, _) in bins.items()}
    summ = {k: {f: bl.stats([x[f] for x in v]) for f in v[0]} for k, v in rows.items()}
    return {"refs": {k: v[2] for k, v in bins.items()}, "summary": summ, "runs": rows, "profile": prof}


def core_table(cb: dict) -> str:
    refs = cb["refs"]
    t = [f"\n## 5c. The core before its rewrite ({refs['before'][:7]}) and now ({refs['now'][:7]})\n\n"
         "Same fake tree, same machine, runs interleaved (4 s each). Steady CPU per sample = the sampler thread's "
         "clock (`self_cpu_s` on each line) from 1 s in to the last sample before the stop sample, over those "
         "samples; whole-run = `self.cpu_s` / samples (includes the baseline and stop samples' process scans); "
         "instructions per steady sample from callgrind (below).\n\n"
         "| tier | steady CPU per sample before, µs | now, µs | now / before | whole-run CPU per sample before, µs | now, µs | instructions per steady sample before | now | "
         "bytes per sample before | now | whole process CPU before, ms | now, ms | peak RSS before, MiB | now, MiB |\n",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"]
    s = cb["summary"]
    pr = cb.get("profile", {})
    tiers = sorted({k.split("|")[0] for k in s})
    for tier in tiers:
        b, n = s.get(f"{tier}|before"), s.get(f"{tier}|now")
        if not b or not n:
            continue
        ratio = n["steady_us_per_sample"]["median"] / b["steady_us_per_sample"]["median"]
        irb = pr.get("before", {}).get("ir_per_sample") if tier.startswith("counter") else None
        irn = pr.get("now", {}).get("ir_per_sample") if tier.startswith("counter") else None
        t.append(f"| {tier} | {bl.fmt(b['steady_us_per_sample'])} | {bl.fmt(n['steady_us_per_sample'])} | "
                 f"{ratio:.3g}× | {bl.fmt(b['us_per_sample'])} | {bl.fmt(n['us_per_sample'])} | "
                 f"{'%.0f' % irb if irb else '—'} | {'%.0f' % irn if irn else '—'} | "
                 f"{bl.fmt(b['bytes_per_sample'], digits=4)} | {bl.fmt(n['bytes_per_sample'], digits=4)} | "
                 f"{bl.fmt(b['wm_cpu_ms'])} | {bl.fmt(n['wm_cpu_ms'])} | {bl.fmt(b['hwm_mib'])} | "
                 f"{bl.fmt(n['hwm_mib'])} |\n")
    for label in ("before", "now"):
        if label in pr:
            t.append(f"\n**{label}** ({refs[label][:7]}): " + wm_profile.table(pr[label]))
    return "".join(t)


def targets(data: dict) -> str:
    out = ["| target | figure | met? |", "|---|---|---|"]

    def row(name: str, fig: str, ok) -> None:
        out.append(f"| {name} | {fig} | {'n/a' if ok is None else ('yes' if ok else 'NO')} |")

    ps = data.get("peers", {}).get("overhead", {}).get("summary", {})
    for p in ("1", "0.1"):
        ours = ps.get(f"wattmeter-cli@{p}")
        peers = {k: v for k, v in ps.items() if not k.startswith("wattmeter") and (k.endswith(f"@{p}") or "@" not in k)}
        if not ours or not peers:
            continue
        for label, get in (("per real sample (steady state)", lambda s: s["ms_per_real_sample"]["median"]),
                           ("whole 1 h job", lambda s: s["whole_run_s"]["1 h"]["median"])):
            cand = {k: get(v) for k, v in peers.items() if get(v) == get(v) and get(v) > 0}
            if not cand:
                continue
            lightest = min(cand, key=cand.get)
            ratio = cand[lightest] / get(ours)
            row(f"≥ 50× less CPU than the lightest measuring peer, period {p} s, {label}",
                f"lightest {lightest}: {ratio:.3g}× ours", ratio >= 50)
    ov = data.get("overhead", {}).get("summary", {})
    d = ov.get("rapl, defaults (0.5 s / 1 s / 10 s)")
    if d:
        row("< 0.05% of one core at the defaults (sampler)", f"{bl.fmt(d['sampler_pct_core'])} %",
            d["sampler_pct_core"]["median"] < 0.05)
        row("< 0.05% of one core at the defaults (whole process, incl. start/exit)",
            f"{bl.fmt(d['process_pct_core'])} % over a short run", d["process_pct_core"]["median"] < 0.05)
    sc = data.get("scale", {}).get("summary", {})
    if "counter" in sc:
        c = sc["counter"]
        row("within 2× of the floor: counter tier (vs periodic floor)", f"{bl.fmt(c['ratio'])}×",
            c["ratio"]["median"] <= 2)
        row("within 2× of the floor: counter tier (vs tight floor, reads only)", f"{bl.fmt(c['ratio_tight'])}×",
            c["ratio_tight"]["median"] <= 2)
    for n in ("100", "1000", "machine"):
        if n in sc:
            row(f"within 2× of the floor: process tier, {n} (vs periodic floor)", f"{bl.fmt(sc[n]['ratio'])}×",
                sc[n]["ratio"]["median"] <= 2)
    rs = data.get("rate", {}).get("summary", {})
    for ld in ("busy", "idle"):
        x = rs.get(f"{ld}@0.001")
        if x:
            ok = x["p99_us"]["median"] < 1000 and x["rate_hz"]["median"] >= 950
            row(f"1 kHz with p99 jitter < 1 ms ({ld} machine)",
                f"{bl.fmt(x['rate_hz'], digits=4)} Hz, p99 {bl.fmt(x['p99_us'])} µs", ok)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
