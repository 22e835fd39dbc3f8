"""AIPowerMeter's experiment module over wattmeter.

- ``Experiment(driver, cont=False)`` records with wattmeter's native meter:
  ``measure_yourself(period=...)`` and ``measure_from_pid_list(pid_list,
  period=...)`` return ``(p, q)``; ``q.put(STOP_MESSAGE)`` stops the
  recording and ``p.join()`` returns once it is complete on disk.
  ``monitor_machine(period=...)`` serves the machine's figures to Prometheus
  through ``wattmeter.serve``.
- ``ExpResults(driver)`` reads what a driver (``parsers.JsonParser``) holds
  and answers as AIPowerMeter's does: ``total_``, ``average_``, ``max_``,
  ``get_duration`` / ``get_exp_duration``, ``get_curve``, ``get_summary``,
  ``print()``, ``list_metrics()``, ``display_curves()``, ``str()``.

Differences from AIPowerMeter, all deliberate (docs/aipowermeter.md):
energy totals of wattmeter recordings are exact counter differences, not
trapezoids; ``total_`` of a metric in seconds (``absolute_cpu_time_per_pid``)
is its sum, not an integral in s²; ``average_`` of a per-GPU metric gives every
GPU, not only the last; ``psys_power`` of ``-1`` (no psys zone) is absent, not
-1 W integrated into negative joules; percentages are printed once (an NVML
utilisation already in percent is not multiplied by 100 again).
"""

from __future__ import annotations

import atexit
import datetime
import os
import queue as _queue
import threading
import warnings
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import parsers
from .parsers import COUNT_METRICS, CPU_ORDER, GPU_ORDER, POWER_METRICS

STOP_MESSAGE = "Stop"
EXP_DONE = "Done"


def joules_to_kwh(n: float) -> float:
    """conversion function"""
    return n / 3600 / 1000


def humanize_bytes(num: float, suffix: str = "B") -> str:
    """A number of bytes for humans (1.5GiB)."""
    for unit in ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi"]:
        if abs(num) < 1024.0:
            return "%3.1f%s%s" % (num, unit, suffix)
        num /= 1024.0
    return "%.1f%s%s" % (num, "Yi", suffix)


def time_to_sec(t: datetime.datetime) -> float:
    """convert a date to timestamp in seconds"""
    return t.timestamp()


def integrate(metric: List[Dict[str, float]], start: Optional[float] = None, end: Optional[float] = None,
              allow_None: bool = False) -> Optional[List[Optional[float]]]:
    """Cumulative trapezoid integral of [{'date', 'value'}] over [start, end]
    (AIPowerMeter's integrate: the list of running totals, 0 first)."""
    pts = [m for m in metric if (start is None or m["date"] >= start) and (end is None or m["date"] <= end)]
    r: List[Optional[float]] = [0.0]
    for m1, m2 in zip(pts, pts[1:]):
        y1, y2 = m1["value"], m2["value"]
        if y1 is None or y2 is None:
            if allow_None:
                r.append(None)
                continue
            return None
        prev = r[-1] or 0.0
        r.append(prev + (m2["date"] - m1["date"]) * (y2 + y1) / 2)
    return r


def is_iou(s1: float, e1: float, s2: float, e2: float) -> bool:
    return s2 < e1 and s1 < e2


def total(metric: Any, start: Optional[float] = None, end: Optional[float] = None) -> Any:
    """AIPowerMeter's total: the trapezoid integral of a curve (a list of
    segments, or a {device: segments} dict), summed over segments."""
    def one(segments: List[List[Dict[str, float]]]) -> Optional[float]:
        rs = []
        for seg in segments:
            if not seg:
                continue
            if start is not None and end is not None and not is_iou(seg[0]["date"], seg[-1]["date"], start, end):
                rs.append(0.0)
                continue
            v = integrate(seg, start, end)
            if v is not None and v[-1] is not None:
                rs.append(v[-1])
        return sum(rs) if rs else None

    if isinstance(metric, list):
        return one(metric)
    if isinstance(metric, dict):
        return {k: one(v) for k, v in metric.items()}
    return None


# ---- recording ----------------------------------------------------------------------


class _Recording(threading.Thread):
    """The ``p`` of ``(p, q)``: a thread that owns a wattmeter Meter and
    stops it when ``STOP_MESSAGE`` arrives on ``q``; ``join()`` returns once
    the recording is complete on disk. ``exitcode`` is 0 after a clean stop,
    1 if stopping failed (``error`` holds why)."""

    def __init__(self, meter: Any, q: "_queue.Queue[Any]") -> None:
        super().__init__(name="deep_learning_power_measure recording", daemon=True)
        self.meter = meter
        self.q = q
        self.exitcode: Optional[int] = None
        self.error: Optional[BaseException] = None
        self.pid = os.getpid()
        self._lock = threading.Lock()
        atexit.register(self._at_exit)

    def run(self) -> None:
        while True:
            msg = self.q.get()
            if msg == STOP_MESSAGE:
                break
        self._stop_meter()

    def _stop_meter(self) -> None:
        with self._lock:
            if self.exitcode is not None:
                return
            try:
                if self.meter is not None and self.meter.running:
                    self.meter.stop()
                self.exitcode = 0
            except BaseException as e:  # reported through exitcode/error, as a process would
                self.error = e
                self.exitcode = 1

    def _at_exit(self) -> None:
        # The script ended without STOP_MESSAGE: complete the recording
        # rather than leave it cut (AIPowerMeter's child would be killed).
        self._stop_meter()

    def terminate(self) -> None:
        self.q.put(STOP_MESSAGE)


class Experiment:
    """Starts and stops recordings into ``driver`` (a parsers.JsonParser),
    as AIPowerMeter's Experiment, with wattmeter's native meter.

    Args:
        driver: where the recordings go (``JsonParser(folder)``), or a
            ``prometheus_client.PrometheusClient()`` for ``monitor_machine``.
        model, input_size: accepted for compatibility; not used.
        cont: False (default) deletes the folder's previous recordings; True
            adds a new recording segment beside them.
        sysfs_root, procfs_root: read /sys and /proc from elsewhere (a
            container's /host/sys, test fixtures); wattmeter's extension.
    """

    def __init__(self, driver: Any, model: Any = None, input_size: Any = None, cont: bool = False,
                 *, sysfs_root: Optional[str] = None, procfs_root: Optional[str] = None) -> None:
        import wattmeter

        self.db_driver = driver
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root
        if not cont and hasattr(driver, "erase"):
            driver.erase()
        try:
            sens = wattmeter.sensors(sysfs_root or "/sys", procfs_root or "/proc")
        except OSError as e:
            sens = {}
            warnings.warn(f"cannot probe the energy sensors: {e}", RuntimeWarning)
        states = {s.get("name"): s for s in sens.get("sensors", [])} if isinstance(sens, dict) else {}
        rapl = states.get("rapl-powercap", {})
        self.rapl_available = rapl.get("state") == "ok"
        self.nvidia_available = any(str(n).startswith("nvml") and s.get("state") == "ok" for n, s in states.items())
        self.wattmeter_available = False
        if not self.rapl_available:
            warnings.warn("RAPL not available: " + " ".join(x for x in (rapl.get("state", "absent"),
                          rapl.get("detail", ""), rapl.get("fix", "")) if x)
                          + "; the CPU will be modelled (labelled 'modeled' in the recording)",
                          RuntimeWarning)

    def _recorder(self, pids: Optional[Iterable[int]], include_self: bool, period: float) -> Tuple[_Recording, "_queue.Queue[Any]"]:
        import wattmeter

        if not hasattr(self.db_driver, "new_recording_dir"):
            raise TypeError("measure_*() needs a driver that stores recordings, such as "
                            "parsers.JsonParser(folder); PrometheusClient is for monitor_machine()")
        period = float(period)
        if not period > 0:
            raise ValueError(f"period must be a positive number of seconds, not {period!r}")
        # AIPowerMeter's period is the interval of its samples (process CPU
        # shares, memory, power): our process tier. Counters are read at
        # least twice a second so power curves keep their shape; totals are
        # counter differences and do not depend on either.
        m: Any = wattmeter.Meter(self.db_driver.new_recording_dir(), period=min(period, 0.5),
                            proc_period=period, mem_period=period,
                            pids=list(pids or ()), include_self=include_self,
                            sysfs_root=self.sysfs_root, procfs_root=self.procfs_root)
        try:
            m.start()
        except OSError as e:
            # A measuring problem must not stop the user's experiment: it
            # runs unrecorded, and says so.
            warnings.warn(f"the experiment runs UNRECORDED: {e}", RuntimeWarning, stacklevel=3)
            m = None  # p then only waits for STOP_MESSAGE
        q: "_queue.Queue[Any]" = _queue.Queue()
        p = _Recording(m, q)
        p.start()
        return p, q

    def measure_yourself(self, period: float = 1, measurement_period: float = 2) -> Tuple[_Recording, "_queue.Queue[Any]"]:
        """Records this process and its children (started before or after)
        until ``q.put(STOP_MESSAGE)``; returns ``(p, q)``. ``measurement_period``
        (how often AIPowerMeter wrote its file) is accepted and not needed:
        every sample is written as it is taken."""
        return self._recorder(None, True, period)

    def measure_from_pid_list(self, pid_list: Iterable[int], period: float = 1) -> Tuple[_Recording, "_queue.Queue[Any]"]:
        """Records the processes of pid_list (and their children) until
        ``q.put(STOP_MESSAGE)``; returns ``(p, q)``."""
        pids = [int(p) for p in pid_list]
        if not pids:
            raise ValueError("pid_list is empty: give the PIDs to measure")
        return self._recorder(pids, False, period)

    def monitor_machine(self, pid_args: Any = None, parent_pid: int = 1, period: float = 1,
                        measurement_period: float = 2) -> Any:
        """Serves the whole machine's figures to Prometheus (the driver is a
        ``prometheus_client.PrometheusClient()``, port 5001 by default, with
        AIPowerMeter's gauges power_draw_cpu, intel_power, mem_used_cpu,
        mem_used_gpu, power_draw_gpu) through ``wattmeter.serve``; blocks as
        AIPowerMeter's does."""
        import wattmeter

        serve = getattr(wattmeter, "serve", None)
        if serve is None:
            raise NotImplementedError(
                "monitor_machine() needs wattmeter.serve (wattmeter's Prometheus exporter), which this "
                "wattmeter build does not have; run `wattmeter serve` from a build that has it, or "
                "record with measure_yourself() / `wattmeter run` meanwhile")
        host = getattr(self.db_driver, "host", "127.0.0.1")
        port = int(getattr(self.db_driver, "port", 5001))
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        srv = serve(listen, period_s=float(period), sysfs_root=self.sysfs_root, procfs_root=self.procfs_root)
        # AIPowerMeter's monitor_machine never returns: serve until Ctrl-C
        # (or SIGTERM turned into KeyboardInterrupt by the caller).
        try:
            while True:
                threading.Event().wait(3600.0)
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
        return None


# ---- results --------------------------------------------------------------------------

Curve = List[List[Dict[str, float]]]


class ExpResults:
    """The figures of the recordings a driver holds, as AIPowerMeter's
    ExpResults gives them (see the module docstring for the differences)."""

    def __init__(self, db_driver: Any) -> None:
        self.db_driver = db_driver
        self.cpu_metrics, self.gpu_metrics, self.exp_metrics, self.wattmeter_metrics = db_driver.load_metrics()
        self.segments = db_driver.get_segments()
        self._segs: List[parsers.Segment] = db_driver.segments() if hasattr(db_driver, "segments") else []
        if self.cpu_metrics is None and self.gpu_metrics is None and self.exp_metrics is None:
            raise Exception('I could not load any recordings from folder: "' + str(getattr(db_driver, "folder", "?"))
                            + '".\n Please check that the folder contains valid recordings '
                            "(a wattmeter recording, sub-folders holding them, or AIPowerMeter's power_metrics.json)")

    # -- listing --------------------------------------------------------------------

    @staticmethod
    def _ordered(names: Iterable[str], order: List[str]) -> List[str]:
        names = list(names)
        return [n for n in order if n in names] + [n for n in names if n not in order]

    def list_metrics(self) -> Dict[str, List[str]]:
        """The available metrics grouped 'CPU', 'GPU', 'Experiment'."""
        return {
            "CPU": self._ordered(self.cpu_metrics or {}, CPU_ORDER),
            "GPU": self._ordered(self.gpu_metrics or {}, GPU_ORDER),
            "Experiment": list(self.exp_metrics or {}),
        }

    def print_metrics(self) -> None:
        for k, mets in self.list_metrics().items():
            print(k)
            print("      NOT AVAILABLE" if not mets else mets)

    def __str__(self) -> str:
        m = self.list_metrics()
        r = ["Available metrics : "]
        for title, key in (("CPU", "CPU"), ("GPU", "GPU"), ("Experiments", "Experiment")):
            r.append(title)
            r.append("  " + ", ".join(m[key]) if m[key] else "NOT AVAILABLE")
        r.append("\n\ncall print() method to display power consumption")
        return "\n".join(r)

    # -- curves ---------------------------------------------------------------------

    def _group(self, name: str) -> Optional[str]:
        if self.cpu_metrics and name in self.cpu_metrics:
            return "cpu"
        if self.gpu_metrics and name in self.gpu_metrics:
            return "gpu"
        if self.exp_metrics and name in self.exp_metrics:
            return "exp"
        return None

    def _is_per_device(self, name: str) -> bool:
        return self._group(name) == "gpu" and "dates" not in (self.gpu_metrics or {}).get(name, {})

    def _points(self, seg: parsers.Segment, group: str, name: str, dev: Optional[str] = None) -> List[Dict[str, float]]:
        out = []
        for s in seg.samples:
            v = s[group].get(name)
            if dev is not None:
                v = v.get(dev) if isinstance(v, dict) else None
            elif isinstance(v, dict):
                v = None
            if v is not None:
                out.append({"date": s["date"], "value": v})
        return out

    def _devices(self, name: str) -> List[str]:
        devs: List[str] = []
        for seg in self._segs:
            for s in seg.samples:
                v = s["gpu"].get(name)
                if isinstance(v, dict):
                    for k in v:
                        if k not in devs:
                            devs.append(k)
        return devs

    def get_curve(self, name: str) -> Any:
        """The values of a metric as AIPowerMeter gives them: a list of
        segments, each a list of {"date": Unix seconds, "value": v}; for a
        per-GPU metric a dict {gpu: segments}. None if the metric is absent."""
        group = self._group(name)
        if group is None:
            return None
        if group == "exp":
            em = (self.exp_metrics or {})[name]
            return [[{"date": time_to_sec(d), "value": v} for d, v in zip(em["dates"], em["values"]) if v is not None]]
        if self._is_per_device(name):
            curve = {}
            for dev in self._devices(name):
                segs = [p for p in (self._points(s, group, name, dev) for s in self._segs) if p]
                if segs:
                    curve[dev] = segs
            return curve or None
        segs = [p for p in (self._points(s, group, name) for s in self._segs) if p]
        return segs or None

    # -- totals ---------------------------------------------------------------------

    def _seg_total(self, seg: parsers.Segment, group: str, name: str, dev: Optional[str],
                   start: Optional[float], end: Optional[float]) -> Optional[float]:
        pts = self._points(seg, group, name, dev)
        if not pts:
            return None
        if start is not None and end is not None and not is_iou(pts[0]["date"], pts[-1]["date"], start, end):
            return 0.0
        if name in POWER_METRICS and seg.exact is not None:
            ex = seg.exact(name, start, end)
            if isinstance(ex, dict):
                ex = ex.get(dev) if dev is not None else None
            if ex is not None:
                return float(ex)
        if name in POWER_METRICS and seg.source == "wattmeter":
            # the exact energy of every interval inside the window
            tot = 0.0
            for prev, s in zip(seg.samples, seg.samples[1:]):
                if (start is not None and prev["date"] < start) or (end is not None and s["date"] > end):
                    continue
                e = s["energy"].get(name)
                if isinstance(e, dict):
                    e = e.get(dev) if dev is not None else None
                if e is not None:
                    tot += e
            return tot
        if name in COUNT_METRICS:
            first = seg.samples[0]["date"] if seg.source == "wattmeter" else None
            return sum(p["value"] for p in pts
                       if p["date"] != first  # the start copy of the first interval
                       and (start is None or p["date"] >= start) and (end is None or p["date"] <= end))
        r = integrate(pts, start, end)
        return None if r is None else r[-1]

    def total_(self, metric_name: str, start: Optional[float] = None, end: Optional[float] = None) -> Any:
        """The total of a metric over [start, end] (Unix seconds; None = all):
        joules for a metric in watts (exact counter differences for wattmeter
        recordings, AIPowerMeter's per-segment trapezoid for its files),
        seconds for a metric in seconds (their sum), else the time integral
        (value x seconds). A dict per GPU for a per-GPU metric; None if absent."""
        group = self._group(metric_name)
        if group is None:
            return None
        if group == "exp":
            return total(self.get_curve(metric_name), start, end)

        def over(dev: Optional[str]) -> Optional[float]:
            vals = [self._seg_total(s, group, metric_name, dev, start, end) for s in self._segs]
            vals2 = [v for v in vals if v is not None]
            return sum(vals2) if vals2 else None

        if self._is_per_device(metric_name):
            return {dev: over(dev) for dev in self._devices(metric_name)}
        return over(None)

    def get_duration_metric(self, metric_name: str, start: Optional[float] = None,
                            end: Optional[float] = None, _dev: Optional[str] = None) -> Tuple[float, float, float]:
        """(seconds during which the metric was recorded, start, end): the
        sum over segments of first-to-last sample, within [start, end]."""
        curve = self.get_curve(metric_name)
        if isinstance(curve, dict):
            curve = curve.get(_dev) if _dev is not None else next(iter(curve.values()), None)
        if not curve:
            return 0.0, start or 0.0, end or 0.0
        sts = min(c["date"] for c in curve[0])
        ets = max(c["date"] for c in curve[-1])
        s0 = max(start, sts) if start is not None else sts
        e0 = min(end, ets) if end is not None else ets
        duration = 0.0
        for seg in curve:
            ds = sorted(c["date"] for c in seg if s0 <= c["date"] <= e0)
            if len(ds) > 1:
                duration += ds[-1] - ds[0]
        return duration, s0, e0

    def get_exp_duration(self, start: Optional[float] = None, end: Optional[float] = None) -> Tuple[float, float, float]:
        """(duration in seconds, start, end as Unix seconds) of the experiment:
        the time during which its first metric was recorded, summed over
        segments (pauses between segments excluded)."""
        for metrics in (self.cpu_metrics, self.gpu_metrics, self.exp_metrics):
            if metrics:
                return self.get_duration_metric(next(iter(metrics)), start=start, end=end)
        return 0.0, start or 0.0, end or 0.0

    def get_duration(self, start: Optional[float] = None, end: Optional[float] = None) -> Tuple[float, float, float]:
        """get_exp_duration(), under the name AIPowerMeter's docs use."""
        return self.get_exp_duration(start=start, end=end)

    def average_(self, metric_name: str, start: Optional[float] = None, end: Optional[float] = None) -> Any:
        """The time average of a metric over [start, end]: total_ / the time it
        was recorded (watts for a power, bytes for a memory ...); for a
        per-GPU metric one value per GPU (every GPU, not only the last)."""
        tot = self.total_(metric_name, start=start, end=end)
        if tot is None:
            return None
        if isinstance(tot, dict):
            out: Dict[str, Optional[float]] = {}
            for dev, t in tot.items():
                d, s, e = self.get_duration_metric(metric_name, start, end, _dev=dev)
                out[dev] = None if t is None else (t / d if d > 0 else t)
            return out
        d, s, e = self.get_duration_metric(metric_name, start, end)
        return tot / d if d > 0 else tot

    def max_(self, metric_name: str, start: Optional[float] = None, end: Optional[float] = None) -> Any:
        """The highest value of a metric in [start, end] (a dict per GPU for
        a per-GPU metric); None if absent."""
        curve = self.get_curve(metric_name)
        if curve is None:
            return None

        def mx(segs: Curve) -> Optional[float]:
            vals = [m["value"] for seg in segs for m in seg
                    if (start is None or start <= m["date"]) and (end is None or m["date"] <= end)]
            return max(vals) if vals else None

        if isinstance(curve, dict):
            return {dev: mx(c) for dev, c in curve.items()}
        return mx(curve)

    def total_power_draw(self, start: Optional[float] = None, end: Optional[float] = None) -> Optional[float]:
        """Joules of the CPU packages and the GPUs together."""
        parts = [self.total_("intel_power", start, end), self.total_("nvidia_draw_absolute", start, end)]
        parts2 = [p for p in parts if p is not None]
        return sum(parts2) if parts2 else None

    # -- summary --------------------------------------------------------------------

    def get_summary(self, start: Optional[float] = None, end: Optional[float] = None) -> Dict[str, Any]:
        """The experiment summary as a dict (AIPowerMeter's keys)."""
        summary: Dict[str, Any] = {}
        d, s, e = self.get_exp_duration(start=start, end=end)
        summary["duration"] = d
        summary["start"] = datetime.datetime.fromtimestamp(s).__str__()
        summary["end"] = datetime.datetime.fromtimestamp(e).__str__()
        if self.cpu_metrics is not None:
            summary["cpu"] = {
                "total_psys_power": self.total_("psys_power", start, end),
                "total_intel_power": self.total_("intel_power", start, end),
                "rel_intel_power": self.total_("rel_intel_power", start, end),
                "total_dram_power": self.total_("total_dram_power", start, end),
                "total_cpu_power": self.total_("total_cpu_power", start, end),
                "rel_dram_power": self.total_("per_process_dram_power", start, end),
                "rel_cpu_power": self.total_("per_process_cpu_power", start, end),
                "mem_use_abs": self.average_("per_process_mem_use_abs", start, end),
                "mem_use_uss": self.average_("per_process_mem_use_uss", start, end),
                "max_total_mem_use": self.max_("total_mem_use", start, end),
                "absolute_cpu_time_per_pid": self.total_("absolute_cpu_time_per_pid", start, end),
                "relative_cpu_use": self.average_("per_process_cpu_uses", start, end),
            }
        if self.gpu_metrics is not None:
            g: Dict[str, Any] = {}
            if "nvidia_draw_absolute" in self.gpu_metrics:
                g["abs_nvidia_power"] = self.total_("nvidia_draw_absolute", start, end)
                g["rel_nvidia_power"] = self.total_("nvidia_attributable_power", start, end)
                g["nvidia_mem_use_abs"] = self.max_("nvidia_mem_use", start, end)
                g["nvidia_average_sm"] = self.average_("nvidia_sm_use", start, end)
                g["per_gpu_attributable_power"] = self.total_("per_gpu_attributable_power", start, end)
            if "nvidia_power" in self.gpu_metrics:
                g["nvidia_power"] = self.total_("nvidia_power", start, end)
                g["nvidia_use_rate"] = self.average_("nvidia_use_rate", start, end)
                g["nvidia_memory"] = self.max_("nvidia_memory", start, end)
                g["per_gpu_power"] = self.total_("per_gpu_nvidia_power", start, end)
                g["per_gpu_nvidia_memory"] = self.max_("per_gpu_nvidia_memory", start, end)
                g["per_gpu_nvidia_use_rate"] = self.average_("per_gpu_nvidia_use_rate", start, end)
            summary["gpu"] = g
        return summary

    def print(self) -> None:
        """Prints the experiment summary."""
        print("============================================ EXPERIMENT SUMMARY ============================================")
        desc = self.db_driver.get_description() if hasattr(self.db_driver, "get_description") else None
        if desc is not None:
            print(desc)
        print()
        d, s, e = self.get_exp_duration()
        print("Experiment duration: ", d, "seconds.", " Start:", datetime.datetime.fromtimestamp(s),
              " end", datetime.datetime.fromtimestamp(e))
        modeled = [seg.results.dir for seg in self._segs if seg.results is not None and seg.results.modeled]
        if modeled:
            print("NOTE: no energy counters could be read for", ", ".join(modeled),
                  "- the CPU figures there are MODELED, not measured (see `wattmeter sensors`)")
        if self.cpu_metrics is not None:
            print("ENERGY CONSUMPTION: ")
            print("on the cpu")
            print()
            total_psys_power = self.total_("psys_power")
            total_intel_power = self.total_("intel_power")
            total_dram_power = self.total_("total_dram_power")
            total_cpu_power = self.total_("total_cpu_power")
            rel_dram_power = self.total_("per_process_dram_power")
            rel_cpu_power = self.total_("per_process_cpu_power")
            rel_intel_power = self.total_("rel_intel_power")
            mem_use_abs = self.average_("per_process_mem_use_abs")
            mem_use_uss = self.average_("per_process_mem_use_uss")
            cpu_total_time = self.total_("absolute_cpu_time_per_pid")
            total_mem_use = self.max_("total_mem_use")
            if cpu_total_time is not None:
                print("CPU time usage of your experiment:", cpu_total_time, "seconds")
            if total_dram_power is None and mem_use_abs is None:
                print("RAM consumption not available. RAM usage not available")
            elif total_dram_power is None:
                print("RAM consumption not available. Your usage was ", humanize_bytes(mem_use_abs),
                      *(("among which", humanize_bytes(mem_use_uss), "is unique to your experiment (ie. USS memory)")
                        if mem_use_uss is not None else ()))
            else:
                print("Total RAM consumption:", total_dram_power, "joules, your experiment consumption: ",
                      rel_dram_power, "joules",
                      *((", for an average of", humanize_bytes(mem_use_abs)) if mem_use_abs is not None else ()),
                      *(("among which", humanize_bytes(mem_use_uss), "is unique to your experiment (ie. USS memory).")
                        if mem_use_uss is not None else ()),
                      *(("The max amount of RAM used during your experiment was:", humanize_bytes(total_mem_use))
                        if total_mem_use is not None else ()))
            if total_cpu_power is None:
                print("detailed CPU consumption not available")
            else:
                print("Total CPU consumption:", total_cpu_power, "joules, your experiment consumption: ",
                      rel_cpu_power, "joules")
            print("total intel power: ", total_intel_power, "joules",
                  *((", your experiment consumption: ", rel_intel_power, "joules") if rel_intel_power is not None else ()))
            print("total psys power: ", total_psys_power if total_psys_power is not None else "not available",
                  "joules" if total_psys_power is not None else "")
        if self.gpu_metrics is not None:
            print()
            print()
            print("GPU")
            legacy = "nvidia_draw_absolute" in self.gpu_metrics
            abs_p = self.total_("nvidia_draw_absolute" if legacy else "nvidia_power")
            rel_p = self.total_("nvidia_attributable_power")
            print("nvidia total consumption:", abs_p, "joules",
                  *((", your consumption: ", rel_p, "joules") if rel_p is not None else ()))
            mem = self.max_("nvidia_mem_use") if "nvidia_mem_use" in self.gpu_metrics else self.max_("per_gpu_nvidia_memory")
            print("Max memory used:")
            for dev, mx in (mem or {}).items():
                print("    gpu:", dev, "memory used not available" if mx is None else ": " + humanize_bytes(mx))
            print("Average GPU usage:")
            if "nvidia_sm_use" in self.gpu_metrics:  # fractions: shown once as percent
                avg = {k: (None if v is None else v * 100.0) for k, v in (self.average_("nvidia_sm_use") or {}).items()}
            else:  # NVML's use rate is already a percentage
                avg = self.average_("per_gpu_nvidia_use_rate") or {}
            for dev, mx in avg.items():
                if mx is None:
                    print("    gpu:", dev, "sm usage not available")
                else:
                    print("    gpu: {}: {:0.3f} %".format(dev, mx))
            att = self.total_("per_gpu_attributable_power") or {}
            print("Attributable usage per GPU")
            for dev, mx in att.items():
                if mx is None:
                    print("    gpu:", dev, "power draw not available")
                else:
                    print("    gpu: {}: {:0.3f} joules".format(dev, mx))

    # -- plots ----------------------------------------------------------------------

    def display_curves(self, metric_names: Union[str, List[str]], saveto: Optional[str] = None) -> Any:
        """Plots the metrics over time (one line per segment, per GPU for a
        per-GPU metric). Saves to ``saveto`` if given (no window is opened),
        else shows the figure. Returns the matplotlib Figure."""
        from wattmeter.results import _figure

        if isinstance(metric_names, str):
            metric_names = [metric_names]
        if saveto:
            Figure = _figure("display_curves()")
            fig = Figure(figsize=(9, 4.5), layout="constrained")
            ax = fig.subplots()
        else:
            from wattmeter.results import _need

            plt = _need("matplotlib.pyplot", "plot", "display_curves()")
            fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
        for name in metric_names:
            curve = self.get_curve(name)
            if curve is None:
                continue
            series = curve.items() if isinstance(curve, dict) else [(None, curve)]
            for dev, segs in series:
                color = None
                for i, seg in enumerate(segs):
                    xs = [datetime.datetime.fromtimestamp(p["date"]) for p in seg]
                    ys = [p["value"] for p in seg]
                    label = (name if dev is None else f"{name}:{dev}") if i == 0 else None
                    (line,) = ax.plot(xs, ys, label=label, color=color)
                    color = line.get_color()
        ax.set_xlabel("time")
        ax.set_ylabel(", ".join(metric_names))
        for lab in ax.get_xticklabels():
            lab.set_rotation(45)
        if ax.lines:
            ax.legend()
        if saveto:
            fig.savefig(saveto)
        else:
            plt.show()
        return fig


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m deep_learning_power_measure.power_measure.experiment
    --output_folder DIR [--curve intel_power,total_dram_power]``: prints the
    summary of a folder's recordings (and shows the curves)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m deep_learning_power_measure.power_measure.experiment")
    ap.add_argument("--output_folder", default="power_measure",
                    help="directory where the energy consumption records have been saved")
    ap.add_argument("--curve", default=None, help="metrics to plot, comma separated (e.g. intel_power)")
    ap.add_argument("--saveto", default=None, help="save the curves to this image instead of showing them")
    args = ap.parse_args(argv)
    exp_result = ExpResults(parsers.JsonParser(args.output_folder))
    exp_result.print()
    if args.curve:
        exp_result.display_curves(args.curve.split(","), saveto=args.saveto)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
