#!/usr/bin/env python3
"""peer_driver — one measured run of the peers benchmark (bench/peers.py).

Runs the workload (W forked worker processes burning CPU in a Python loop for
S seconds; this main process only waits for them) under one tool living in
this process, as a user of that tool would write it, at period P:

  none                no tool (the baseline)
  wattmeter-py        wattmeter.Meter(period=P, proc_period=P), start / stop
  codecarbon-machine  codecarbon.OfflineEmissionsTracker(tracking_mode="machine",
                      measure_power_secs=P, save_to_file=False), start / stop
  codecarbon-process  the same with tracking_mode="process"
  zeus                zeus.monitor.ZeusMonitor(gpu_indices=[]) with its defaults
                      (every RAPL top-level zone is a "CPU", psys included),
                      begin_window / end_window: no sampling period; a
                      wrap-around poller process per zone
  carbontracker       carbontracker.tracker.CarbonTracker(epochs=1, components="cpu",
                      update_interval=P), epoch_start / epoch_end / stop
  eco2ai              eco2ai.Tracker(measure_period=P, cpu_processes="current"),
                      start / stop (CPU power modelled from TDP, not read)
  perun               @perun.perun(sampling_period=P) around the workload
  aipowermeter        AIPowerMeter (GreenAI-Uppa, bench/.peers/AIPowerMeter):
                      Experiment(JsonParser(dir)).measure_yourself(period=P),
                      STOP_MESSAGE, ExpResults totals; NVML import given the
                      stand-in bench/stubs/pynvml.py

--warm S constructs the tool S seconds before its window starts (Zeus's
wrap-around pollers are then up; the others have finished their set-up).

Every worker is reaped with os.wait4, which gives its exact CPU time; the
driver writes (--json-out) one JSON object with the workers' CPU, CPU
snapshots (getrusage SELF + CHILDREN + live unreaped descendants) and
monotonic times at the phase boundaries, its own peak RSS, and what the tool
itself reported (energies per device, its own words). The parent
(peers.py) reaps this process with wait4 too.

With --rusage-out FILE (the baseline run under `wattmeter run`), it writes its
whole CPU (self + reaped children) there and leaves with os._exit at once, so
the wattmeter process's own CPU is wait4(wattmeter) − that figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
from workload import burn_until  # noqa: E402

TCK = os.sysconf("SC_CLK_TCK")
AIPM_DIR = os.path.join(BENCH, ".peers", "AIPowerMeter")
STEADY_AFTER_S = 3.0  # steady state: from this long after the window opened


def live_descendants(exclude=()) -> tuple:
    """CPU seconds (from schedstat, ns; 10 ms ticks where it is absent) and RSS of this process's live descendants:
    helper processes a tool started and has not reaped yet."""
    seen, todo, cpu_s, rss_kb = set(), [os.getpid()], 0.0, 0
    while todo:
        pid = todo.pop()
        try:
            kids = []
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids += [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            if k in seen or k in exclude:
                continue
            seen.add(k)
            todo.append(k)
            try:
                try:  # nanoseconds on the CPU (schedstat); else 10 ms ticks
                    with open(f"/proc/{k}/schedstat") as f:
                        ns = int(f.read().split()[0])
                    if ns <= 0:  # some kernels report zeros here
                        raise ValueError("no schedstat")
                    cpu_s += ns / 1e9
                except (OSError, ValueError, IndexError):
                    with open(f"/proc/{k}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    cpu_s += (int(fields[11]) + int(fields[12])) / TCK
                with open(f"/proc/{k}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss_kb += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                pass
    return cpu_s, rss_kb, len(seen)


def cpu(exclude=()) -> dict:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    live, live_rss, n_live = live_descendants(exclude)
    return {"t": time.monotonic(), "self": s.ru_utime + s.ru_stime, "children": c.ru_utime + c.ru_stime,
            "live": live, "total": s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime + live,
            "self_maxrss_kb": s.ru_maxrss, "live_rss_kb": live_rss, "n_live": n_live}


KWH_J = 3.6e6


class Tool:
    """start()/stop() bracket the window; run(work) is start, work, stop."""

    def start(self) -> None: ...

    def stop(self) -> dict:
        return {}

    def run(self, work, marks: dict) -> dict:
        self.start()
        marks["t_started"] = time.monotonic()
        marks["started"] = cpu()
        work()
        marks["t_stop_call"] = time.monotonic()
        return self.stop()


class NoTool(Tool):
    pass


def wattmeter_energy(d: str) -> dict:
    last = None
    with open(os.path.join(d, "samples.jsonl"), "rb") as f:
        for raw in f:
            if raw.strip():
                last = raw
    s = json.loads(last) if last else {}
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    e = s.get("energy_j", {})
    methods = {x["name"]: x["method"] for x in meta.get("devices", [])}
    return {"pkg_j": e.get("cpu"), "dram_j": e.get("dram"), "psys_j": e.get("psys"),
            "dram_how": methods.get("dram", "absent"), "cpu_how": methods.get("cpu"),
            "own_duration_s": meta.get("duration_s"), "self_cpu_s": meta["self"]["cpu_s"],
            "samples": meta["self"]["samples"], "psys_as_cpu": False, "mmio_counted": False}


class WattmeterPy(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        import wattmeter
        self.dir = os.path.join(tmp, "wm")
        self.m = wattmeter.Meter(self.dir, period=period, proc_period=period)

    def start(self) -> None:
        self.m.start()

    def stop(self) -> dict:
        self.m.stop()
        return wattmeter_energy(self.dir)


class CodeCarbon(Tool):
    def __init__(self, period: float, tmp: str, mode: str) -> None:
        from codecarbon import OfflineEmissionsTracker
        self.t = OfflineEmissionsTracker(country_iso_code="FRA", tracking_mode=mode,
                                         measure_power_secs=period, save_to_file=False,
                                         log_level="error", output_dir=tmp)

    def start(self) -> None:
        self.t.start()

    def stop(self) -> dict:
        self.t.stop()
        d = self.t.final_emissions_data
        hw = [type(h).__name__ + ":" + str(getattr(h, "_mode", "")) for h in getattr(self.t, "_hardware", [])]
        return {"pkg_j": d.cpu_energy * KWH_J, "dram_j": d.ram_energy * KWH_J, "psys_j": None,
                "dram_how": "modelled (rapl_include_dram=False by default)", "cpu_how": "RAPL package zones",
                "own_duration_s": d.duration, "cpu_power_w": d.cpu_power, "ram_power_w": d.ram_power,
                "measurements": getattr(self.t, "_measure_occurrence", None), "hardware": hw,
                "psys_as_cpu": False}


class Zeus(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        from zeus.monitor import ZeusMonitor
        self.m = ZeusMonitor(gpu_indices=[])  # defaults: every CPU zone it finds

    def start(self) -> None:
        self.m.begin_window("bench", sync_execution=False)

    def stop(self) -> dict:
        w = self.m.end_window("bench", sync_execution=False)
        cpu_e = {str(k): v for k, v in (w.cpu_energy or {}).items()}
        dram_e = {str(k): v for k, v in (w.dram_energy or {}).items()}
        names = {}
        try:
            for i, c in enumerate(getattr(self.m.cpus, "cpus", [])):
                names[str(i)] = str(getattr(c, "path", getattr(c, "rapl_file", "")))
        except Exception:  # noqa: BLE001
            pass
        pkg_only = 0.0
        for i, path in names.items():  # Zeus's "CPUs" that are packages (not psys)
            try:
                with open(os.path.join(path, "name")) as f:
                    if f.read().strip().startswith("package"):
                        pkg_only += cpu_e.get(i, 0.0)
            except OSError:
                pkg_only = None
                break
        out = {"pkg_j": sum(cpu_e.values()) if cpu_e else None, "pkg_only_j": pkg_only,
               "dram_j": sum(dram_e.values()) if dram_e else None, "psys_j": None,
               "cpu_energy_by_index": cpu_e, "dram_energy_by_index": dram_e, "cpu_paths": names,
               "dram_how": "RAPL dram subzones", "cpu_how": "every top-level RAPL zone (psys too) as a CPU",
               "own_duration_s": w.time, "psys_as_cpu": len(cpu_e) > 2}
        # the wrap-around pollers are child processes: stop and reap them here
        # so their CPU is counted (they are otherwise stopped from __del__)
        try:
            for c in getattr(self.m.cpus, "cpus", []):
                for tr in getattr(c, "rapl_wraparound_trackers", []) or []:
                    tr._stop()
                for attr in ("wraparound_tracker", "dram_wraparound_tracker"):
                    tr = getattr(c, attr, None)
                    if tr is not None and hasattr(tr, "_stop"):
                        tr._stop()
        except Exception as e:  # noqa: BLE001
            out["poller_stop_error"] = repr(e)
        del self.m
        gc.collect()
        return out


class CarbonTrackerTool(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        from carbontracker.tracker import CarbonTracker
        self.t = CarbonTracker(epochs=1, epochs_before_pred=0, monitor_epochs=1, update_interval=period,
                               components="cpu", log_dir=tmp, verbose=0)

    def start(self) -> None:
        self.t.epoch_start()
        self.tr = getattr(self.t, "tracker", None)  # epoch_end of the last epoch deletes it

    def stop(self) -> dict:
        self.t.epoch_end()
        out: dict = {"dram_how": "RAPL dram zones", "cpu_how": "RAPL package zones (power over 1 s x epoch time)",
                     "psys_as_cpu": False}
        try:
            tr = self.tr
            ep = list(tr.epoch_times)
            out["own_duration_s"] = sum(ep)
            pkg = dram = 0.0
            for comp in tr.components:
                devs = comp.devices()
                flat = comp.power_usages[0] if comp.power_usages else []
                # power_usage() returns one value per device and is appended
                # flat: [dev0, dev1, ..., dev0, dev1, ...]
                n = len(devs)
                rows = [flat[i:i + n] for i in range(0, len(flat) - n + 1, n)] if n else []
                out.setdefault("devices", []).extend(devs)
                out["samples"] = len(rows)
                for i, dev in enumerate(devs):
                    if not rows:
                        break
                    w = sum(r[i] for r in rows) / len(rows)
                    if dev.startswith("dram"):
                        dram += w * ep[0]
                    else:
                        pkg += w * ep[0]
            # per device from its own power samples x its epoch time ...
            out["pkg_j_per_device"], out["dram_j_per_device"] = pkg, dram
            # ... and what it reports: its total (CPU and DRAM together)
            out["total_j_reported"] = float(sum(tr.total_energy_per_epoch())) * KWH_J
            from carbontracker import constants
            out["pue"] = constants.PUE_2023  # it multiplies its energy by this
            out["total_j_without_pue"] = out["total_j_reported"] / constants.PUE_2023
            out["pkg_j"], out["dram_j"] = out["total_j_without_pue"], None
            out["combined"] = True
        except Exception as e:  # noqa: BLE001
            out["extract_error"] = repr(e)
        self.t.stop()
        return out


class Eco2AI(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        import eco2ai
        self.csv = os.path.join(tmp, "eco2ai.csv")
        self.t = eco2ai.Tracker(project_name="bench", measure_period=period, cpu_processes="current",
                                file_name=self.csv, alpha_2_code="FR", ignore_warnings=True)

    def start(self) -> None:
        self.t.start()

    def stop(self) -> dict:
        self.t.stop()
        out = {"pkg_j": None, "dram_j": None, "psys_j": None, "psys_as_cpu": False,
               "cpu_how": "modelled from TDP x utilisation (reads no counter)",
               "dram_how": "modelled from memory used"}
        try:
            import csv
            with open(self.csv) as f:
                rows = list(csv.DictReader(f))
            r = rows[-1]
            out["total_j_modelled"] = float(r.get("power_consumption(kWh)", "nan")) * KWH_J
            out["own_duration_s"] = float(r.get("duration(s)", "nan"))
            out["cpu_name"] = r.get("CPU_name")
            out["pkg_j"] = out["total_j_modelled"]  # everything it reports, all modelled
            out["modelled_all"] = True
        except Exception as e:  # noqa: BLE001
            out["extract_error"] = repr(e)
        return out


class Perun(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        import perun
        self.perun = perun
        self.period = period
        self.tmp = tmp
        self.node = None

    def run(self, work, marks: dict) -> dict:
        from perun.data_model.data import MetricType

        def keep(node):
            self.node = node

        self.perun.register_callback  # noqa: B018 (exists; registered inside the run)

        @self.perun.perun(sampling_period=self.period, format="json", data_out=os.path.join(self.tmp, "perun"),
                          log_lvl="ERROR")
        def job():
            self.perun.register_callback(keep)
            marks["t_started"] = time.monotonic()
            marks["started"] = cpu()
            work()
            marks["t_stop_call"] = time.monotonic()

        job()
        out = {"psys_as_cpu": False, "cpu_how": "RAPL package zones", "dram_how": "RAPL dram zones"}
        n = self.node
        if n is None:
            out["extract_error"] = "perun called back no data node"
            return out

        def metric(node, mt):
            m = node.metrics.get(mt) if node.metrics else None
            return float(m.value) if m is not None and getattr(m, "value", None) is not None else None

        # the callback's node is the application's; its energies sum its hosts
        out["pkg_j"] = metric(n, MetricType.CPU_ENERGY)
        out["dram_j"] = metric(n, MetricType.DRAM_ENERGY)
        out["total_j"] = metric(n, MetricType.ENERGY)
        out["own_duration_s"] = metric(n, MetricType.RUNTIME)
        out["node"] = f"{n.type}:{n.id}"
        return out


class AIPowerMeter(Tool):
    def __init__(self, period: float, tmp: str) -> None:
        sys.path.insert(0, os.path.join(BENCH, "stubs"))  # pynvml stand-in first
        sys.path.insert(1, AIPM_DIR)
        from deep_learning_power_measure.power_measure import experiment, parsers
        self.experiment, self.parsers = experiment, parsers
        self.dir = os.path.join(tmp, "aipm")
        self.driver = parsers.JsonParser(self.dir)
        self.exp = experiment.Experiment(self.driver)
        self.period = period

    def start(self) -> None:
        self.p, self.q = self.exp.measure_yourself(period=self.period)

    def stop(self) -> dict:
        self.q.put(self.experiment.STOP_MESSAGE)
        self.p.join()
        out = {"psys_as_cpu": False, "cpu_how": "RAPL package zones (power over each period, integrated)",
               "dram_how": "RAPL dram subzones"}
        try:
            r = self.experiment.ExpResults(self.parsers.JsonParser(self.dir))
            out["pkg_j"] = r.total_("intel_power")
            out["dram_j"] = r.total_("total_dram_power")
            ps = r.total_("psys_power")
            out["psys_j"] = ps
            out["own_duration_s"] = r.get_exp_duration()[0]
        except Exception as e:  # noqa: BLE001
            out["extract_error"] = repr(e)
        return out


TOOLS = {"none": lambda p, t: NoTool(), "wattmeter-py": WattmeterPy,
         "codecarbon-machine": lambda p, t: CodeCarbon(p, t, "machine"),
         "codecarbon-process": lambda p, t: CodeCarbon(p, t, "process"),
         "zeus": Zeus, "carbontracker": CarbonTrackerTool, "eco2ai": Eco2AI, "perun": Perun,
         "aipowermeter": AIPowerMeter}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=sorted(TOOLS), default="none")
    ap.add_argument("--period", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warm", type=float, default=0.0, help="construct the tool this long before its window")
    ap.add_argument("--json-out")
    ap.add_argument("--rusage-out")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="peer-")
    marks: dict = {"start": cpu()}
    t_wall0 = time.monotonic()
    tool = TOOLS[a.tool](a.period, tmp)
    marks["imported"] = cpu()
    if a.warm > 0:
        time.sleep(a.warm)
    marks["t_start_call"] = time.monotonic()
    box: dict = {}

    def work() -> None:
        t_open = time.monotonic()
        deadline = t_open + a.seconds
        pids = []
        for _ in range(a.workers):
            pid = os.fork()
            if pid == 0:
                try:
                    burn_until(deadline)
                finally:
                    os._exit(0)
            pids.append(pid)
        time.sleep(min(STEADY_AFTER_S, a.seconds / 3))
        marks["working"] = cpu(exclude=set(pids))  # steady state starts; helpers' RSS
        workers_cpu = 0.0
        for pid in pids:
            _, _, ru = os.wait4(pid, 0)
            workers_cpu += ru.ru_utime + ru.ru_stime
        marks["worked"] = cpu()
        box["workers_cpu_s"] = workers_cpu

    extra = tool.run(work, marks)
    marks["t_stopped"] = time.monotonic()
    marks["stopped"] = cpu()
    res = {"tool": a.tool, "period": a.period, "seconds": a.seconds, "warm": a.warm,
           "workers_cpu_s": box["workers_cpu_s"], "phases": marks, "wall_s": time.monotonic() - t_wall0,
           "extra": extra, "pid": os.getpid()}
    if a.rusage_out:
        c = cpu()
        with open(a.rusage_out, "w") as f:
            json.dump({"cpu_s": c["self"] + c["children"], "self_maxrss_kb": c["self_maxrss_kb"],
                       "children_maxrss_kb": 0, "workers_cpu_s": box["workers_cpu_s"],
                       "t_working": marks["working"]["t"], "t_worked": marks["worked"]["t"]}, f)
        os._exit(0)
    out = json.dumps(res, default=str)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(out)
    else:
        print(out)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
