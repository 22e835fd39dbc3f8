#!/usr/bin/env python3
"""gpu_real — wattmeter's GPU energy against NVML read independently.

For a machine with an NVIDIA GPU and PyTorch (one short run, ~1 minute):

    python3 bench/gpu_real.py [--busy-s 30] [--idle-s 10] [--gpu 0]

It runs `wattmeter run --json -- python3 -c <workload>` where the workload
does large matrix products on GPU --gpu for --busy-s seconds, then sleeps
--idle-s seconds; meanwhile this script, in the same process tree's parent,

  - reads the GPU's total-energy counter with pynvml (nvidia-ml-py) just
    before starting wattmeter and just after it exits: the independent
    reference (it spans slightly more than wattmeter's recording, by the
    start-up and exit of wattmeter, a few ms at idle power);
  - samples nvmlDeviceGetPowerUsage every 0.1 s and integrates it (the
    trapezoid rule): what power-polling tools report.

Writes bench/results/gpu-real-<date>-<host>.md and .json with the GPU,
driver, date and the three energies. Needs wattmeter ($WATTMETER_BIN,
build-bench/ or PATH) and pynvml; --workload-cmd replaces the PyTorch job
(used to check the script against the tests' mock NVML, no GPU needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

WORKLOAD = """
import sys, time, torch
dev = torch.device('cuda', 0)
busy_s, idle_s = float(sys.argv[1]), float(sys.argv[2])
a = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
end = time.monotonic() + busy_s
n = 0
while time.monotonic() < end:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize()
    n += 20
print(f'{n} matmuls of 8192^2 fp16 in {busy_s} s', file=sys.stderr)
del a, b, c
torch.cuda.synchronize()
time.sleep(idle_s)
"""


class PowerPoller:
    """nvmlDeviceGetPowerUsage every `every` s, integrated (trapezoid)."""

    def __init__(self, nvml, handle, every: float = 0.1) -> None:
        self.nvml, self.h, self.every = nvml, handle, every
        self.energy_j = 0.0
        self.n = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        last_t, last_w = None, None
        nxt = time.monotonic()
        while not self._stop.is_set():
            w = self.nvml.nvmlDeviceGetPowerUsage(self.h) / 1000.0
            t = time.monotonic()
            if last_t is not None:
                self.energy_j += (w + last_w) / 2.0 * (t - last_t)
            last_t, last_w = t, w
            self.n += 1
            nxt += self.every
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy-s", type=float, default=30.0)
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--gpu", type=int, default=0, help="NVML index (CUDA_VISIBLE_DEVICES is set to it)")
    ap.add_argument("--period", type=float, default=0.5, help="wattmeter's counter period")
    ap.add_argument("--workload-cmd", default=None, help="replace the PyTorch job (a shell-style string)")
    ap.add_argument("--no-write", action="store_true", help="print only, write no results file")
    a = ap.parse_args()

    import pynvml as nvml

    nvml.nvmlInit()
    h = nvml.nvmlDeviceGetHandleByIndex(a.gpu)
    name = nvml.nvmlDeviceGetName(h)
    name = name.decode() if isinstance(name, bytes) else name
    driver = nvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else driver
    uuid = nvml.nvmlDeviceGetUUID(h)
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid

    out = tempfile.mkdtemp(prefix="wm-gpu-real-")
    rec = os.path.join(out, "rec")
    wl = (shlex.split(a.workload_cmd) if a.workload_cmd
          else [sys.executable, "-c", WORKLOAD, str(a.busy_s), str(a.idle_s)])
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(a.gpu), CUDA_DEVICE_ORDER="PCI_BUS_ID")
    cmd = [benchlib.wattmeter_bin(), "run", "--json", "-q", "-o", rec, "--period", str(a.period), "--", *wl]

    poll = PowerPoller(nvml, h)
    e0_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    e1_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    poll.stop()
    nvml.nvmlShutdown()
    if p.returncode != 0:
        raise SystemExit(f"wattmeter run failed ({p.returncode}): {p.stderr}")
    s = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    if s is None:
        s = json.loads(subprocess.run([benchlib.wattmeter_bin(), "report", "--json", rec], capture_output=True,
                                      text=True, check=True).stdout)
    dev = f"gpu{a.gpu}"
    wm_j = s["energy_j"][dev]
    ref_j = (e1_mj - e0_mj) / 1000.0
    gpu = [g for g in s.get("gpus", []) if g.get("device") == dev]
    src = gpu[0]["source"] if gpu else "?"
    m = benchlib.machine()
    data = {"machine": m, "gpu": {"name": name, "uuid": uuid, "driver": driver, "index": a.gpu},
            "params": vars(a), "wattmeter_j": wm_j, "wattmeter_duration_s": s["duration_s"],
            "wattmeter_source": src, "nvml_counter_j": ref_j, "wall_s": wall,
            "power_usage_integrated_j": poll.energy_j, "power_usage_samples": poll.n,
            "attributed_j": s["energy_j"].get(f"{dev}_attributed")}
    mline = benchlib.machine_md(m).replace("no (fake tree used)", "no (CPU modelled; not used here)")
    md = (f"# wattmeter against NVML on a real GPU — {benchlib.stamp()}\n\n{mline}"
          f"- GPU {a.gpu}: {name} ({uuid}), driver {driver}\n"
          f"- workload: {'custom: ' + a.workload_cmd if a.workload_cmd else f'fp16 8192² matmuls {a.busy_s} s, then {a.idle_s} s idle'}; "
          f"wattmeter --period {a.period}\n\n"
          "| figure | energy (J) | vs NVML counter |\n|---|---|---|\n"
          f"| NVML energy counter, before/after wattmeter ({wall:.2f} s) | {ref_j:.1f} | — |\n"
          f"| wattmeter `energy_j.{dev}` ({src}, {s['duration_s']:.2f} s recorded) | {wm_j:.1f} | "
          f"{(wm_j / ref_j - 1) * 100 if ref_j else float('nan'):+.2f} % |\n"
          f"| nvmlDeviceGetPowerUsage every 0.1 s, integrated ({poll.n} readings) | {poll.energy_j:.1f} | "
          f"{(poll.energy_j / ref_j - 1) * 100 if ref_j else float('nan'):+.2f} % |\n"
          f"| attributed to the workload (`{dev}_attributed`) | {data['attributed_j']} | |\n\n"
          "The counter reference spans wattmeter's start-up and exit as well (a few ms at idle power).\n")
    print(md)
    if not a.no_write:
        benchlib.write_results(os.path.join(benchlib.RESULTS, f"gpu-real-{benchlib.stamp()}-{m['host']}"), md, data)


if __name__ == "__main__":
    main()
