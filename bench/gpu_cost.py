#!/usr/bin/env python3
"""gpu_cost — the per-sample cost of the NVML source beside the CPU-only one.

Runs, --repeats times each and interleaved (round robin),

    wattmeter run -q -o DIR --period P [--no-gpu | --nvml-lib MOCK] -- python3 bench/workload.py ...

for three configurations: GPUs off (--no-gpu), and the mock libnvidia-ml of
the tests (tests/mock_nvml, built by meson) playing 1 and 8 GPUs, each GPU
with two processes on it. Per sample = self.cpu_s / samples from meta.json
(the sampler thread's CPU time, CLOCK_THREAD_CPUTIME_ID), and the whole
process's CPU from wait4 (benchlib.run_cli).

What this measures: wattmeter's own work per GPU (two NVML calls per counter
tick, five more plus the per-process calls on process ticks, formatting and
writing the GPU fields) with calls that return at once. A real driver's calls
are ioctls into the kernel module and cost more; measure on a GPU machine for
those (not done here: no GPU was available).

Prints the table and writes bench/results/gpu-cost-<date>-<host>.md and .json.
The mock comes from $WM_MOCK_NVML or build*/tests/c/libmock_nvml.so; the
binary from $WATTMETER_BIN, build-bench/ or PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def find_mock() -> str:
    cands = [os.environ.get("WM_MOCK_NVML", "")]
    cands += [os.path.join(benchlib.REPO, d, "tests", "c", "libmock_nvml.so")
              for d in ("build-bench", "build-test", "build")]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    raise SystemExit("no mock libnvidia-ml: meson setup build && meson compile -C build, or set WM_MOCK_NVML")


def scenario(path: str, n_gpus: int) -> None:
    lines = [f"gpus={n_gpus}"]
    for i in range(n_gpus):
        lines += [f"gpu{i}.watts={100 + 10 * i}", f"gpu{i}.proc={4100000 + 2 * i}:60:1024",
                  f"gpu{i}.proc={4100001 + 2 * i}:20:512"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--period", type=float, default=0.01)
    ap.add_argument("--proc-period", type=float, default=0.1)
    a = ap.parse_args()

    mock = find_mock()
    work = tempfile.mkdtemp(prefix="wm-gpu-cost-")
    configs = [("CPU only (--no-gpu)", ["--no-gpu"], 0), ("mock NVML, 1 GPU", ["--nvml-lib", mock], 1),
               ("mock NVML, 8 GPUs", ["--nvml-lib", mock], 8)]
    runs = {name: [] for name, _, _ in configs}
    m = benchlib.machine()
    try:
        for r in range(a.repeats):
            for name, args, n in configs:
                if n:
                    scen = os.path.join(work, f"scen-{n}")
                    scenario(scen, n)
                    os.environ["WM_MOCK_NVML_SCENARIO"] = scen
                out = os.path.join(work, f"run-{n}-{r}")
                res = benchlib.run_cli(out, ["--period", str(a.period), "--proc-period", str(a.proc_period),
                                             "--no-memory", *args], a.seconds, children=1)
                res["per_sample_us"] = res["self_cpu_s"] / max(res["samples"], 1) * 1e6
                res["gpus_recorded"] = sorted(k for k in res["methods"] if k.startswith("gpu"))
                runs[name].append(res)
                shutil.rmtree(out, ignore_errors=True)
                print(f"  {name:24s} repeat {r + 1}: {res['per_sample_us']:.1f} us/sample, "
                      f"{res['samples']} samples, GPUs {len(res['gpus_recorded'])}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    data = {"machine": m, "params": vars(a), "mock": mock, "configs": {}}
    for name, _, n in configs:
        ps = benchlib.stats(x["per_sample_us"] for x in runs[name])
        pct = benchlib.stats(x["self_cpu_s"] / x["duration_s"] * 100 for x in runs[name])
        whole = benchlib.stats(x["wm_cpu_s"] for x in runs[name])
        assert all(len(x["gpus_recorded"]) == n for x in runs[name]), f"{name}: GPUs not recorded as set up"
        rows.append(f"| {name} | {benchlib.fmt(ps)} | {benchlib.fmt(pct)} | {benchlib.fmt(whole)} |")
        data["configs"][name] = {"per_sample_us": ps, "sampler_pct_of_core": pct, "wattmeter_cpu_s": whole,
                                 "runs": [{k: v for k, v in x.items() if k != "t_s"} for x in runs[name]]}
    # machine_md's RAPL line speaks of the fake tree other benchmarks use;
    # this one uses none: the CPU is whatever this host has (modelled here).
    mline = benchlib.machine_md(m).replace("no (fake tree used)", "no (CPU modelled; no fake tree here)")
    md = (f"# GPU source cost (mock NVML) — {benchlib.stamp()}\n\n{mline}"
          f"- counter period {a.period} s, process period {a.proc_period} s, memory tier off, "
          f"{a.seconds} s runs, {a.repeats} repeats interleaved; median (min–max)\n"
          f"- the mock's NVML calls return at once: this is wattmeter's own work per GPU, not the "
          f"driver's (a real GPU was not available)\n\n"
          "| configuration | sampler CPU per sample (us) | sampler % of one core | whole wattmeter process CPU (s) |\n"
          "|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(md)
    host = m["host"]
    benchlib.write_results(os.path.join(benchlib.RESULTS, f"gpu-cost-{benchlib.stamp()}-{host}"), md, data)


if __name__ == "__main__":
    main()
