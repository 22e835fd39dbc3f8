#!/usr/bin/env python3
"""gpu_accuracy — GPU energy reported by wattmeter and by each peer against the truth, on the mock NVML.

  python3 bench/gpu_accuracy.py [--seconds 10] [--period 1] [--only TOOL ...]
      → bench/results/gpu-accuracy-<date>-<host>.md (+ .json)

The GPUs are the tests' mock libnvidia-ml (tests/mock_nvml/mock_nvml.c, built
by meson as build/tests/c/libmock_nvml.so): it plays a scenario of GPUs at
known *constant* watts, its energy counter (nvmlDeviceGetTotalEnergyConsumption)
advancing at exactly that rate by CLOCK_MONOTONIC since nvmlInit in the
process that loaded it, its nvmlDeviceGetPowerUsage answering the same watts.
The peers load it through the real binding (nvidia-ml-py's `pynvml`, from
bench/.venv-peers, as run.sh installs it): a temporary folder holds
`libnvidia-ml.so.1 -> the mock` and is put first on LD_LIBRARY_PATH; the
wattmeter CLI gets `--nvml-lib <mock>`.

Two scenarios, 2 GPUs at 250 W and 100 W:
  counter     energy counter present (Volta and later)
  power-only  no energy counter and no power field values: only
              nvmlDeviceGetPowerUsage answers, so a tool must integrate power
  no-counter+fields  no energy counter, but the power field values
              (NVML_FI_DEV_POWER_INSTANT/AVERAGE, drivers from R535) answer:
              what Zeus 0.16 polls when there is no counter
In both, the measured job's process is on GPU 0 (60 % SM, via a pid file the
job writes) and pid 1 on GPU 1 (30 % SM), so a tool that attributes per
process has something to attribute.

Each tool measures the same job (a process sleeping S seconds: the GPUs'
draw is the scenario's, whatever the job does), living in that process as
its users write it (see DRIVERS below). Truth = (250 + 100) W x the window:
from the tool's start returning to its stop being called, timed by the driver
with time.monotonic(); for the CLI, the duration it recorded (its own
counter deltas over its own clock). Error = (reported - truth) / truth.
Each tool's own figures (per GPU, its own duration, how it measured) are in
the results, so a tool that measured nothing or failed shows as such.

What the mock cannot show: real power is not constant, and on many GPUs
nvmlDeviceGetPowerUsage is a 1 s running average updated a few times a
second; here every reading is exact and instantaneous, so integrating polled
power is as exact as the counter. Errors here come only from the window's
edges (how a tool starts, stops and times itself), from gaps between its
samples, and from what it fails to read. Nothing here times anything but the
window; the machine may be loaded (the load is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
AIPM_DIR = os.path.join(BENCH, ".peers", "AIPowerMeter")
KWH_J = 3.6e6
WATTS = (250.0, 100.0)
# a 1 W ripple at 0.37 Hz on each GPU (the counter is its exact integral), power
# readings updated every 100 ms: real power is never constant, and Zeus's power poller
# keeps only readings that change and infers its period from them. The ripple moves
# the truth by at most RIPPLE_W / (pi RIPPLE_HZ) = 0.86 J per GPU over any window,
# i.e. 0.05 % of 10 s x 350 W, which the error column does not correct for.
RIPPLE_W, RIPPLE_HZ = 1.0, 0.37
SCENARIOS = {
    "counter": {"energy_counter": 1, "field_power": 1, "power_usage": 1},
    "power-only": {"energy_counter": 0, "field_power": 0, "power_usage": 1},
    "no-counter+fields": {"energy_counter": 0, "field_power": 1, "power_usage": 1},
}
TOOLS = ["wattmeter-cli", "zeus", "codecarbon", "carbontracker", "aipowermeter", "perun", "eco2ai"]
HOW = {
    "wattmeter-cli": "`wattmeter run -q --period P --nvml-lib MOCK -- python3 gpu_accuracy.py --job S`: energy counter "
                     "deltas where present, else power (field values, then nvmlDeviceGetPowerUsage) integrated over its "
                     "sample times; per-process share from nvmlDeviceGetProcessUtilization",
    "zeus": "`ZeusMonitor(gpu_indices=[0, 1], cpu_indices=[])`, begin_window/end_window(sync_execution=False): counter "
            "read at the window's ends; without a counter, PowerMonitor processes (one per power domain) polling, "
            "integrated; its PowerMonitor polls only the power field values (NVML_FI_DEV_POWER_INSTANT/AVERAGE), "
            "never nvmlDeviceGetPowerUsage; whole GPU, no per-process attribution",
    "codecarbon": "`OfflineEmissionsTracker(gpu_ids=[0, 1], measure_power_secs=P, tracking_mode=\"machine\")`: "
                  "`final_emissions_data.gpu_energy`; counter deltas every P; whole GPU; enables NVIDIA only if "
                  "`nvidia-smi --help` succeeds (given the stand-in)",
    "carbontracker": "`CarbonTracker(epochs=1, components=\"gpu\", update_interval=P)`: polls nvmlDeviceGetPowerUsage, "
                     "mean power x epoch time, x PUE (divided out here); whole GPU (devices_by_pid off by default)",
    "aipowermeter": "`Experiment(JsonParser(dir)).measure_yourself(period=P)`, `ExpResults.total_(\"nvidia_power\")`: "
                    "counter read before and after each period's sleep, as power, integrated over its samples' dates; "
                    "enables NVIDIA only with `nvidia-smi` on PATH and parses `nvidia-smi -q -x` once for the minimum "
                    "power limits (given a stand-in answering only that and `--help`); whole GPU in this total "
                    "(its per-process split needs `nvidia-smi pmon`)",
    "perun": "`@perun.perun(sampling_period=P)` around the job, GPU_ENERGY of the application node: polls "
             "nvmlDeviceGetPowerUsage in its monitoring subprocess, integrated; whole GPU",
    "eco2ai": "`Tracker(measure_period=P)`: GPU power from nvmlDeviceGetPowerUsage x time since its last "
              "sample, accumulated in `tracker._gpu._consumption` (read here: its CSV gives CPU+GPU+RAM together); "
              "whole GPU",
}


# ---------------------------------------------------------------- the drivers (run in the peers' venv)

def _pidfile_write() -> None:
    p = os.environ.get("GPU_ACC_PIDFILE")
    if p:
        with open(p + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(p + ".tmp", p)


def drive(tool: str, seconds: float, period: float, tmp: str) -> dict:
    """One measured window under TOOL in this process; returns its figures and the window."""
    _pidfile_write()
    marks: dict = {}
    out: dict = {"tool": tool}

    def window(start, stop):
        marks["tc"] = time.monotonic()
        start()
        marks["t0"] = time.monotonic()
        time.sleep(seconds)
        marks["t1"] = time.monotonic()
        return stop()

    if tool == "zeus":
        from zeus.monitor import ZeusMonitor
        m = ZeusMonitor(gpu_indices=[0, 1], cpu_indices=[])
        out["zeus_power_monitor"] = getattr(m, "power_monitor", None) is not None
        w = window(lambda: m.begin_window("gpu", sync_execution=False),
                   lambda: m.end_window("gpu", sync_execution=False))
        out["per_gpu_j"] = {str(k): v for k, v in w.gpu_energy.items()}
        out["own_duration_s"] = w.time
    elif tool == "codecarbon":
        from codecarbon import OfflineEmissionsTracker
        t = OfflineEmissionsTracker(country_iso_code="FRA", tracking_mode="machine", measure_power_secs=period,
                                    save_to_file=False, log_level="error", output_dir=tmp, gpu_ids=[0, 1])
        window(t.start, t.stop)
        d = t.final_emissions_data
        out["gpu_j"] = d.gpu_energy * KWH_J
        out["own_duration_s"] = d.duration
        out["gpu_power_w"] = d.gpu_power
        out["hardware"] = [type(h).__name__ for h in getattr(t, "_hardware", [])]
    elif tool == "carbontracker":
        from carbontracker import constants
        from carbontracker.tracker import CarbonTracker
        t = CarbonTracker(epochs=1, epochs_before_pred=0, monitor_epochs=1, update_interval=period,
                          components="gpu", log_dir=tmp, verbose=0)
        box = {}

        def start():
            t.epoch_start()
            box["tr"] = t.tracker

        window(start, t.epoch_end)
        tr = box["tr"]
        out["own_duration_s"] = sum(tr.epoch_times)
        out["gpu_j_with_pue"] = float(sum(tr.total_energy_per_epoch())) * KWH_J
        out["pue"] = constants.PUE_2023
        out["gpu_j"] = out["gpu_j_with_pue"] / constants.PUE_2023
        for comp in tr.components:
            out.setdefault("devices", []).extend(comp.devices())
            flat = comp.power_usages[0] if comp.power_usages else []
            # collect_power_usage() does power_usages[-1] += handler.power_usage(): one flat
            # list [gpu0, gpu1, gpu0, gpu1, ...], which energy_usage() then np.mean()s
            out["power_samples"] = len(flat)
            out["power_usages_head_w"] = [float(x) for x in flat[:6]]
        t.stop()
    elif tool == "aipowermeter":
        sys.path.insert(0, AIPM_DIR)
        from deep_learning_power_measure.power_measure import experiment, parsers
        d = os.path.join(tmp, "aipm")
        exp = experiment.Experiment(parsers.JsonParser(d))
        out["nvidia_available"] = bool(exp.nvidia_available)
        box = {}

        def start():
            box["p"], box["q"] = exp.measure_yourself(period=period)

        def stop():
            box["q"].put(experiment.STOP_MESSAGE)
            box["p"].join()

        window(start, stop)
        r = experiment.ExpResults(parsers.JsonParser(d))
        out["gpu_j"] = r.total_("nvidia_power")
        per = r.total_("per_gpu_nvidia_power")
        out["per_gpu_j"] = {str(k): v for k, v in per.items()} if isinstance(per, dict) else per
        out["own_duration_s"] = r.get_exp_duration()[0]
    elif tool == "perun":
        import perun
        from perun.data_model.data import MetricType
        box = {}

        @perun.perun(sampling_period=period, format="json", data_out=os.path.join(tmp, "perun"), log_lvl="ERROR")
        def job():
            perun.register_callback(lambda node: box.__setitem__("node", node))
            marks["t0"] = time.monotonic()
            time.sleep(seconds)
            marks["t1"] = time.monotonic()

        job()
        n = box.get("node")
        if n is None:
            raise RuntimeError("perun called back no data node (no data recorded)")

        def metric(mt):
            m = n.metrics.get(mt) if n.metrics else None
            return float(m.value) if m is not None and getattr(m, "value", None) is not None else None

        out["gpu_j"] = metric(MetricType.GPU_ENERGY)
        out["total_j"] = metric(MetricType.ENERGY)
        out["own_duration_s"] = metric(MetricType.RUNTIME)
    elif tool == "eco2ai":
        import eco2ai
        t = eco2ai.Tracker(project_name="bench", measure_period=period, cpu_processes="current",
                           file_name=os.path.join(tmp, "eco2ai.csv"), alpha_2_code="FR", ignore_warnings=True)
        window(t.start, t.stop)
        g = t._gpu
        out["gpu_available"] = bool(getattr(g, "is_gpu_available", False))
        out["gpu_j"] = float(getattr(g, "_consumption", 0.0)) * KWH_J
        out["gpu_name"] = g.name() if out["gpu_available"] else None
    else:
        raise SystemExit(f"unknown tool {tool}")
    out["window_s"] = marks["t1"] - marks["t0"]
    if "tc" in marks:
        out["start_call_s"] = marks["t0"] - marks["tc"]  # how long start() took
    return out


# ---------------------------------------------------------------- the parent

def machine() -> dict:
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "load_start": " ".join(load), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def versions(py: str) -> dict:
    code = ("import importlib.metadata as m, json\nv={}\n"
            "for p in ['zeus','codecarbon','carbontracker','eco2ai','perun','nvidia-ml-py','pynvml']:\n"
            "    try: v[p]=m.version(p)\n    except Exception as e: v[p]=None\nprint(json.dumps(v))")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60)
    v = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-300:]}
    try:
        with open(os.path.join(AIPM_DIR, "COMMIT")) as f:
            v["AIPowerMeter"] = f.read().strip()
    except OSError:
        v["AIPowerMeter"] = None
    return v


def write_scenario(path: str, kind: str, pidfile: str) -> None:
    # keep_clock: nvmlInit again (AIPowerMeter does, every sample) keeps the counter running, as a real driver
    lines = [f"gpus={len(WATTS)}", "util_period_s=0.1", "keep_clock=1"]
    for i, w in enumerate(WATTS):
        lines.append(f"gpu{i}.watts={w:g}")
        # one model on the node, as real multi-GPU nodes are: Zeus's PowerMonitor
        # refuses GPUs whose names differ (ZeusGPUHeterogeneousError)
        lines.append(f"gpu{i}.name=NVIDIA H100 80GB HBM3")
        lines += [f"gpu{i}.ripple_w={RIPPLE_W:g}", f"gpu{i}.ripple_hz={RIPPLE_HZ:g}", f"gpu{i}.power_update_ms=100"]
        for k, v in SCENARIOS[kind].items():
            lines.append(f"gpu{i}.{k}={v}")
    lines.append(f"gpu0.proc=@{pidfile}:60:2048")
    lines.append("gpu1.proc=1:30:1024")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_one(tool: str, kind: str, a, py: str, wm: str, mock: str, libdir: str, bindir: str) -> dict:
    tmp = tempfile.mkdtemp(prefix=f"gpuacc-{tool}-")
    pidfile = os.path.join(tmp, "job.pid")
    scen = os.path.join(tmp, "scenario.txt")
    write_scenario(scen, kind, pidfile)
    env = dict(os.environ, WM_MOCK_NVML_SCENARIO=scen, GPU_ACC_PIDFILE=pidfile,
               LD_LIBRARY_PATH=libdir + (":" + os.environ["LD_LIBRARY_PATH"] if os.environ.get("LD_LIBRARY_PATH") else ""),
               PATH=bindir + ":" + os.environ.get("PATH", ""), PYTHONWARNINGS="ignore")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    res: dict = {"tool": tool, "scenario": kind}
    limit = a.seconds * 3 + 90
    t_wall = time.monotonic()
    try:
        if tool == "wattmeter-cli":
            summ = os.path.join(tmp, "summary.json")
            cmd = [wm, "run", "-q", "--period", str(a.period), "--nvml-lib", mock, "-o", os.path.join(tmp, "rec"),
                   "--summary-json", summ, "--", sys.executable, os.path.abspath(__file__), "--job", str(a.seconds)]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
            if p.returncode != 0:
                raise RuntimeError(f"exit {p.returncode}: {p.stderr[-400:]}")
            s = json.load(open(summ))
            e = s["energy_j"]
            res["per_gpu_j"] = {str(i): e.get(f"gpu{i}") for i in range(len(WATTS))}
            res["gpu_j"] = e.get("gpu")
            res["attributed_j"] = {str(i): e.get(f"gpu{i}_attributed") for i in range(len(WATTS))}
            res["sources"] = [g.get("source") for g in s.get("gpus", [])]
            res["own_duration_s"] = s["duration_s"]
            res["window_s"] = s["duration_s"]
        else:
            jout = os.path.join(tmp, "out.json")
            cmd = [py, os.path.abspath(__file__), "--driver", tool, "--seconds", str(a.seconds), "--period",
                   str(a.period), "--json-out", jout, "--tmp", tmp]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit, cwd=tmp)
            if p.returncode != 0 or not os.path.exists(jout):
                err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
                # a tool's helper process may die on an NVML error that its parent reports vaguely
                nv = [ln.strip() for ln in err if ln.lstrip().startswith("pynvml.NVMLError")]
                caller = [ln.strip() for ln in err if "pynvml.nvml" in ln and "=" in ln]
                first = f"{caller[-1]} raised {nv[0]} → " if nv and caller else (f"{nv[0]} → " if nv else "")
                raise RuntimeError(f"exit {p.returncode}: {first}" + (err[-1][-300:] if err else "no message"))
            res.update(json.load(open(jout)))
    except subprocess.TimeoutExpired:
        res["error"] = f"did not finish in {limit:.0f} s"
    except Exception as e:  # noqa: BLE001 — any failure is a result, recorded with its reason
        res["error"] = str(e)
    res["wall_s"] = time.monotonic() - t_wall
    if "error" not in res:
        if res.get("gpu_j") is None and isinstance(res.get("per_gpu_j"), dict):
            vals = [v for v in res["per_gpu_j"].values() if v is not None]
            res["gpu_j"] = sum(vals) if vals else None
        res["truth_j"] = sum(WATTS) * res["window_s"]
        if res.get("gpu_j") is not None:
            res["error_pct"] = 100.0 * (res["gpu_j"] - res["truth_j"]) / res["truth_j"]
            if isinstance(res.get("per_gpu_j"), dict):
                res["per_gpu_error_pct"] = {k: (100.0 * (v - WATTS[int(k)] * res["window_s"]) / (WATTS[int(k)] * res["window_s"])
                                                if v is not None else None) for k, v in res["per_gpu_j"].items()}
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


def report(results: list, m: dict, v: dict, a) -> str:
    L = [f"# GPU energy accuracy on the mock NVML — {m['date']}, {m['host']}", "",
         f"Machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, load at start {m['load_start']} "
         f"(shared machine), load at end {m.get('load_end', '?')}.", "",
         f"Two mock GPUs at **{WATTS[0]:g} W and {WATTS[1]:g} W** (each with a {RIPPLE_W:g} W ripple at {RIPPLE_HZ:g} Hz, "
         f"which moves the truth by at most {2 * RIPPLE_W / (3.14159 * RIPPLE_HZ):.1f} J, 0.05 %; tests/mock_nvml, loaded by every peer "
         f"through nvidia-ml-py as `libnvidia-ml.so.1`), one job of **{a.seconds:g} s** per tool and scenario, "
         f"period **{a.period:g} s** for every tool that has one. Truth = {sum(WATTS):g} W x the tool's window "
         "(start returned → stop called, the driver's monotonic clock; the CLI: its recorded duration). "
         "Scenario `counter`: energy counter present; `power-only`: no counter and no power field values, only "
         "nvmlDeviceGetPowerUsage (a tool must integrate power); `no-counter+fields`: no counter, but the power field "
         "values (NVML_FI_DEV_POWER_INSTANT/AVERAGE) answer besides nvmlDeviceGetPowerUsage. Made by `python3 bench/gpu_accuracy.py`.", "",
         "| scenario | tool | reported GPU energy (J) | truth (J) | error | GPU0 / GPU1 (J) | window (s) | notes |",
         "|---|---|---:|---:|---:|---|---:|---|"]
    for r in results:
        per = r.get("per_gpu_j")
        per_s = " / ".join(fmt(x) for x in per.values()) if isinstance(per, dict) else "—"
        notes = []
        if r.get("error"):
            notes.append("**failed**: " + r["error"].replace("|", "/").replace("\n", " ")[:300])
        if r.get("sources"):
            notes.append("source " + ", ".join(str(s) for s in r["sources"]))
        if r.get("attributed_j"):
            notes.append("attributed to the job: " + " / ".join(fmt(x) for x in r["attributed_j"].values()) + " J")
        if r.get("zeus_power_monitor"):
            notes.append("Zeus PowerMonitor (power polled)")
        if "pue" in r:
            notes.append(f"reported {fmt(r['gpu_j_with_pue'])} J incl. PUE {r['pue']}, divided out")
        if r.get("power_samples") is not None:
            head = ", ".join(f"{x:g}" for x in r.get("power_usages_head_w", []))
            notes.append(f"{r['power_samples']} power readings, kept as one flat list [{head}, ...] that it "
                         "averages: the mean GPU's power, not the sum (1/N of the energy with N equal GPUs)")
        if r.get("nvidia_available") is False or r.get("gpu_available") is False:
            notes.append("GPU not detected by the tool")
        if r.get("start_call_s") is not None and r["start_call_s"] > 0.05:
            notes.append(f"start() took {r['start_call_s']:.2f} s")
        if r.get("own_duration_s") is not None and r["tool"] != "wattmeter-cli":
            notes.append(f"own duration {fmt(r['own_duration_s'], 2)} s")
        err = "—" if r.get("error_pct") is None else f"{r['error_pct']:+.2f} %"
        L.append(f"| {r['scenario']} | {r['tool']} | {fmt(r.get('gpu_j'))} | {fmt(r.get('truth_j'))} | {err} | "
                 f"{per_s} | {fmt(r.get('window_s'), 2)} | {'; '.join(notes)} |")
    L += ["", "## Why each error (mechanisms seen in these runs; they hold on real GPUs too)", "",
          "- **carbontracker**: `collect_power_usage()` appends each poll's per-GPU list flat "
          "(`power_usages[-1] += handler.power_usage()`) and `energy_usage()` takes `np.mean` of it: the mean "
          "GPU's power x time, i.e. 1/N of the energy on N equal GPUs (here (250 + 100) / 2 = 175 W: -50 %). "
          "Right with one GPU.",
          "- **AIPowerMeter**: reads only the energy counter, before and after each period's sleep; the "
          "first period lies before its first recorded date, so about one period (here 1 s of 10) is lost. "
          "Without the counter (pre-Volta) its measuring process dies on NVMLError_NotSupported and nothing is "
          "recorded.",
          "- **perun**: its monitoring subprocess starts up to ~0.5 s into the job and its RUNTIME and energy "
          "cover only what it saw (-4.7 % to +0.8 % over five runs of this benchmark on 2026-11-29).",
          "- **eco2AI**: its GPU clock starts inside `start()` (which takes over 1 s here), about 0.35 s "
          "before `start()` returns, so it counts part of its own set-up: +3.5 % of a 10 s job.",
          "- **Zeus**: counter read at the window's ends (exact). Without the counter it polls only the power "
          "field values (NVML_FI_DEV_POWER_INSTANT/AVERAGE) in one process per power domain, never "
          "nvmlDeviceGetPowerUsage: with only the latter it fails; with the fields it is -1.0 % (one 100 ms "
          "reading interval at the window's start).",
          "- **CodeCarbon**: counter deltas every period; without the counter it integrates "
          "nvmlDeviceGetPowerUsage; within 0.1 % either way.",
          "- **wattmeter CLI**: counter deltas, else power integrated over its sample times (field values, then "
          "nvmlDeviceGetPowerUsage); the only tool here that attributes GPU energy to the measured processes "
          "(the job, alone on GPU 0, gets GPU 0's energy over its life; GPU 1's pid 1 is not the run's).",
          ]
    L += ["", "## What each tool does", "", "| tool | how it is used and what it reads |", "|---|---|"]
    L += [f"| {t} | {HOW[t]} |" for t in TOOLS if t in a.only]
    L += ["", "## Versions", "", "| package | version |", "|---|---|"]
    L += [f"| {k} | {val} |" for k, val in v.items()]
    L += ["", "## What the mock cannot show", "",
          "The mock's power is nearly constant and exact: its counter is the exact integral of the power that "
          "nvmlDeviceGetPowerUsage and the field values answer at every call (checked: the CLI's counter-based and "
          "power-integrated figures agree to 0.00 %). Real GPUs' power varies within a second, and on many of "
          "them nvmlDeviceGetPowerUsage is a running average over about 1 s, updated a few times a second; so "
          "integrating polled power, exact here, is only as good as the sampling on real hardware, and a tool that "
          "polls once a second would see real errors this run cannot show. The errors here come from the window's "
          "edges, from gaps between samples (time a tool does not cover), and from what a tool fails to read. "
          "`bench/gpu_real.py` measures against the real counter when a GPU is lent.", "",
          "Where the mock differs from a driver and it mattered: (1) by default every nvmlInit restarts its "
          "counter; a real counter runs from the driver's load. AIPowerMeter calls nvmlInit at every sample, so "
          "the scenarios set `keep_clock=1` (without it AIPowerMeter reads ~0 J). (2) It answers the power field "
          "values whatever their scope, so the memory-power domain reads the board's watts; Zeus then starts a "
          "PowerMonitor process for that domain too (not used for its GPU energy). (3) Both GPUs carry one model "
          "name, as on a real node: Zeus's PowerMonitor refuses GPUs whose names differ. (4) The mock keeps its "
          "clock per process: two processes loading it see different counter values (a real driver's are "
          "machine-wide); no tool here reads one GPU's counter from two processes. A `nvidia-smi` stand-in on "
          "PATH answers only `--help` (CodeCarbon's presence check) and `-q -x` with each GPU's minimum power "
          "limit (AIPowerMeter's Experiment() parses it; not used for energy), and exits 1 otherwise. (5) With a "
          "perfectly constant power (no ripple) Zeus's PowerMonitor, which keeps a reading only when it differs "
          "from the previous one, holds fewer than 2 points in the window and reports 0 J; with a ripple that "
          "changes at every call it infers a 0 s period and floods its queue: hence the ripple with readings "
          "updated every 100 ms, as a driver's are."]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="job length per tool and scenario (default 10)")
    ap.add_argument("--period", type=float, default=1.0, help="sampling period for every tool that has one (default 1)")
    ap.add_argument("--only", nargs="+", choices=TOOLS, default=TOOLS)
    ap.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build dir with the mock and the CLI")
    ap.add_argument("--python", default=os.path.join(BENCH, ".venv-peers", "bin", "python"),
                    help="the peers' venv (bench/run.sh builds it)")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    ap.add_argument("--suffix", default="", help="added to the results' name (run.sh --quick: -quick)")
    ap.add_argument("--from-json", help="only re-render the .md from a results .json")
    ap.add_argument("--driver", help=argparse.SUPPRESS)
    ap.add_argument("--job", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--json-out", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.job is not None:  # the measured job under the CLI
        _pidfile_write()
        time.sleep(a.job)
        return
    if a.driver:
        res = drive(a.driver, a.seconds, a.period, a.tmp or tempfile.mkdtemp())
        with open(a.json_out, "w") as f:
            json.dump(res, f, default=str)
        return
    if a.from_json:
        with open(a.from_json) as f:
            d = json.load(f)
        a.seconds, a.period, a.only = d["seconds"], d["period"], list(dict.fromkeys(r["tool"] for r in d["results"]))
        with open(a.from_json[:-5] + ".md", "w") as f:
            f.write(report(d["results"], d["machine"], d["versions"], a))
        return
    mock = os.path.join(a.build, "tests", "c", "libmock_nvml.so")
    wm = os.path.join(a.build, "wattmeter")
    for p, fix in ((mock, "meson setup build && meson compile -C build"), (wm, "meson compile -C build")):
        if not os.path.exists(p):
            sys.exit(f"gpu_accuracy: {p} is missing; fix: {fix}")
    if not os.path.exists(a.python):
        sys.exit(f"gpu_accuracy: no peers' venv at {a.python}; fix: run bash bench/run.sh once (it builds it), "
                 "or pass --python")
    libdir = tempfile.mkdtemp(prefix="gpuacc-lib-")
    os.symlink(os.path.abspath(mock), os.path.join(libdir, "libnvidia-ml.so.1"))
    bindir = tempfile.mkdtemp(prefix="gpuacc-bin-")
    # nvidia-smi stand-in: CodeCarbon enables NVIDIA GPUs only if `nvidia-smi --help`
    # succeeds, AIPowerMeter only if nvidia-smi is on PATH, and its Experiment()
    # parses `nvidia-smi -q -x` once for each GPU's minimum power limit (not used
    # for energy). Both then read energy through pynvml, i.e. the mock. Anything
    # else exits 1, so no figure can come from here.
    smi = os.path.join(bindir, "nvidia-smi")
    gpus_xml = "".join("<gpu><power_readings><min_power_limit>100.00 W</min_power_limit></power_readings></gpu>"
                       for _ in WATTS)
    with open(smi, "w") as f:
        f.write("#!/bin/sh\n# bench/gpu_accuracy.py stand-in: presence checks and the min power limit only\n"
                'case "$*" in\n'
                '"--help") echo "nvidia-smi stand-in (bench/gpu_accuracy.py)"; exit 0;;\n'
                f'"-q -x") echo "<nvidia_smi_log>{gpus_xml}</nvidia_smi_log>"; exit 0;;\n'
                "esac\necho 'nvidia-smi stand-in: not a driver' >&2\nexit 1\n")
    os.chmod(smi, 0o755)
    m = machine()
    v = versions(a.python)
    results = []
    for kind in a.scenarios:
        for tool in a.only:
            r = run_one(tool, kind, a, a.python, wm, mock, libdir, bindir)
            print(f"{kind:10} {tool:14} " + (f"{r['gpu_j']:.1f} J vs {r['truth_j']:.1f} J ({r['error_pct']:+.2f} %)"
                                             if r.get("error_pct") is not None else f"— {r.get('error', 'no figure')[:200]}"),
                  flush=True)
            results.append(r)
    with open("/proc/loadavg") as f:
        m["load_end"] = " ".join(f.read().split()[:3])
    shutil.rmtree(libdir, ignore_errors=True)
    shutil.rmtree(bindir, ignore_errors=True)
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, f"gpu-accuracy-{time.strftime('%Y-%m-%d', time.gmtime())}-{m['host']}{a.suffix}")
    with open(base + ".json", "w") as f:
        json.dump({"machine": m, "versions": v, "seconds": a.seconds, "period": a.period, "watts": WATTS,
                   "results": results}, f, indent=1, default=str)
    with open(base + ".md", "w") as f:
        f.write(report(results, m, v, a))
    print(f"wrote {base}.md and .json")


if __name__ == "__main__":
    main()
