"""AIPowerMeter's experiment module over wattmeter.

- ``Experiment(driver, cont=False)`` records with wattmeter's native meter:
  ``measure_yourself(period=...)`` and ``measure_from_pid_list(pid_list,
  period=...)`` return ``(p, q)``, ``p`` the recorder process (a
  multiprocessing.Process, as AIPowerMeter's); ``q.put(STOP_MESSAGE)`` stops
  the recording, and ``p.join()`` returns, and ``q.get()`` gives ``(None,
  None)``, once it is complete on disk. ``measure(queue, pid_args, ...)`` is
  the blocking loop they run in the recorder.
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
import multiprocessing
import os
import pickle
import queue as _queue
import signal
import sys
import threading
import traceback
import warnings
from functools import wraps
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


# ---- processes (AIPowerMeter's helpers) ----------------------------------------------


def _children(pid: int, recursive: bool = True) -> List[int]:
    """The PIDs of pid's children (and theirs), from procfs's parent links."""
    from .rapl_power import procfs_root

    kids: Dict[int, List[int]] = {}
    try:
        entries = os.listdir(procfs_root)
    except OSError:
        return []
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(os.path.join(procfs_root, e, "stat"), encoding="utf-8", errors="replace") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended while we looked
        kids.setdefault(ppid, []).append(int(e))
    out: List[int] = []
    todo = [int(pid)]
    while todo:
        for c in sorted(kids.get(todo.pop(0), [])):
            if c not in out:
                out.append(c)
                if recursive:
                    todo.append(c)
    return out


def get_pid_list(current_pid: Optional[int], parent_pid: Optional[int] = None) -> List[int]:
    """The experiment's PIDs: parent_pid (default: this process's parent) and
    its descendants, minus current_pid (the recorder) and its descendants."""
    root = os.getppid() if parent_pid is None else int(parent_pid)
    pids = [root] + _children(root)
    me = os.getpid() if current_pid is None else int(current_pid)
    mine = {me, *_children(me)}
    return [p for p in pids if p not in mine]


def collect_all(p: Any, d: Dict[str, List[int]]) -> None:
    """Adds p's descendants to d, keyed "user_name" (AIPowerMeter's helper;
    p is a rapl_power.Process or a psutil.Process)."""
    for c in p.children():
        try:
            name = c.username() + "_" + c.name()
        except Exception:  # ended meanwhile
            continue
        d.setdefault(name, []).append(c.pid)
        collect_all(c, d)


def get_pid_list_all() -> Dict[str, List[int]]:
    """Every process of the machine below PID 1, keyed "user_name"."""
    from .rapl_power import Process

    d: Dict[str, List[int]] = {}
    collect_all(Process(1), d)
    return d


def interpolate(metric1: List[Dict[str, float]], metric2: List[Dict[str, float]]
                ) -> Tuple[List[Dict[str, float]], List[Dict[str, float]]]:
    """Both curves ([{'date', 'value'}]) on the union of their dates, by
    linear interpolation (a curve's first/last value held outside its
    range, as numpy.interp)."""
    xs = sorted({m["date"] for m in metric1} | {m["date"] for m in metric2})

    def interp(metric: List[Dict[str, float]]) -> List[Dict[str, float]]:
        pts = sorted((m["date"], m["value"]) for m in metric)
        out = []
        j = 0
        for x in xs:
            if not pts:
                break
            if x <= pts[0][0]:
                y = pts[0][1]
            elif x >= pts[-1][0]:
                y = pts[-1][1]
            else:
                while pts[j + 1][0] < x:
                    j += 1
                (x1, y1), (x2, y2) = pts[j], pts[j + 1]
                y = y1 + (y2 - y1) * (x - x1) / (x2 - x1) if x2 != x1 else y2
            out.append({"date": x, "value": y})
        return out

    return interp(metric1), interp(metric2)


def cumsum(metric: List[Dict[str, float]]) -> Any:
    """The running sum of a curve's values (a numpy array when numpy is
    installed, as AIPowerMeter's, else a list)."""
    vals = [m["value"] for m in metric]
    try:
        import numpy as np
    except ImportError:
        out, s = [], 0.0
        for v in vals:
            s += v
            out.append(s)
        return out
    return np.cumsum(vals)


def get_usage_duration(curve: Any) -> Any:
    """Seconds during which a usage curve was above 0: the sum of the
    intervals (between consecutive samples of a segment) whose closing
    sample is > 0, each sample holding its interval's average. A curve is a
    list of segments ([[{'date', 'value'}]]) or a {device: segments} dict
    (one figure per device); None gives None. (AIPowerMeter's is a stub
    returning None.)"""
    if curve is None:
        return None
    if isinstance(curve, dict):
        return {dev: get_usage_duration(c) for dev, c in curve.items()}
    segs = curve if curve and isinstance(curve[0], list) else [curve]
    tot = 0.0
    for seg in segs:
        for m1, m2 in zip(seg, seg[1:]):
            if m2["value"] is not None and m2["value"] > 0:
                tot += m2["date"] - m1["date"]
    return tot


def processify(func: Any) -> Any:
    """Decorator (AIPowerMeter's): ``obj.method(*args)`` runs
    ``func(obj, queue, *args)`` in a forked process and returns ``(p, queue)``
    at once; the process's PID is the first item put on the queue, and when
    func returns (or raises) ``(result, error)`` is put on it, error being
    None or ``(type, value, traceback text)``."""

    def process_func(self: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        try:
            ret = func(self, queue, *args, **kwargs)
        except Exception as e:
            queue.put((None, (type(e), e, "".join(traceback.format_tb(e.__traceback__)))))
            raise
        queue.put((ret, None))

    @wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Tuple[Any, Any]:
        queue = _CTX.Queue()
        p = _CTX.Process(target=process_func, args=[self, queue, *args], kwargs=kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            p.start()
        queue.put(p.pid)
        return p, queue

    return wrapper


# ---- recording ----------------------------------------------------------------------

_CTX = multiprocessing.get_context("fork")


class RecorderQueue:
    """The ``q`` of ``(p, q)``. ``q.put(STOP_MESSAGE)`` goes to the recorder;
    ``q.get()`` returns what the recorder sends back: ``(None, None)`` once
    the recording is complete on disk, ``(None, (type, value, traceback
    text))`` if it failed, as AIPowerMeter's processified recorder. Two pipes
    underneath, so ``q.get()`` never takes back the STOP_MESSAGE meant for
    the recorder."""

    def __init__(self) -> None:
        self._to: Any = _CTX.Queue()
        self._from: Any = _CTX.Queue()
        self._stop_sent = False

    def put(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        self._to.put(obj, block, timeout)
        if obj == STOP_MESSAGE:
            self._stop_sent = True

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        return self._from.get(block, timeout)

    def get_nowait(self) -> Any:
        return self._from.get_nowait()

    def empty(self) -> bool:
        return bool(self._from.empty())

    def qsize(self) -> int:
        return int(self._from.qsize())

    def close(self) -> None:
        self._to.close()
        self._from.close()

    def join_thread(self) -> None:
        self._to.join_thread()
        self._from.join_thread()

    def cancel_join_thread(self) -> None:
        self._to.cancel_join_thread()
        self._from.cancel_join_thread()


def _wait_stop(queue: Any, parent: Optional[int]) -> None:
    """Returns when STOP_MESSAGE arrives on the recorder's side of a queue (a
    RecorderQueue's inbound pipe, or any queue a caller of
    Experiment.measure() passes), or when the process that started the
    recorder is gone (killed before it could say stop: the recorder must not
    outlive it)."""
    q = queue._to if isinstance(queue, RecorderQueue) else queue
    if parent is None:
        parent = os.getppid()
    while True:
        try:
            if q.get(True, 0.5) == STOP_MESSAGE:
                return
        except _queue.Empty:
            pass
        if os.getppid() != parent:
            return


# Recorders started by this process, so a folder is read only once the
# recorders told to stop have finished writing it (AIPowerMeter's scripts
# read the results right after q.put(STOP_MESSAGE), without p.join()).
_RECORDERS: List["Recorder"] = []


def _settle(folder: str, timeout_s: float = 60.0) -> None:
    """Waits for this process's recorders that write into folder and have
    been told to stop."""
    folder = os.path.abspath(folder)
    for r in list(_RECORDERS):
        try:
            if r._q._stop_sent and r.folder == folder and r.is_alive():
                r.join(timeout_s)
        except (ValueError, AssertionError):  # closed, or not our child
            pass


class _Terminated(BaseException):
    """SIGTERM in the recorder: complete the recording, then die of SIGTERM."""


class Recorder(_CTX.Process):  # type: ignore[name-defined,misc]
    """The ``p`` of ``(p, q)``: the recorder process, a
    ``multiprocessing.Process`` as AIPowerMeter's (its own ``pid``,
    ``join()``, ``is_alive()``, ``exitcode``, ``terminate()``, ``kill()``,
    ``close()``). It runs wattmeter's native meter (a C thread: the recorder
    uses next to no CPU, and what it uses is not billed to you).
    ``terminate()`` (SIGTERM) completes the recording first, then the
    process ends by SIGTERM (``exitcode == -15``); ``kill()`` (SIGKILL) cuts it
    where it is, and the samples written so far stay readable."""

    def __init__(self, exp: "Experiment", q: RecorderQueue, pid_args: Optional[List[int]], period: float,
                 out_dir: str) -> None:
        super().__init__(name="deep_learning_power_measure recorder", daemon=True)
        self._exp = exp
        self._q = q
        self._pid_args = pid_args
        self._period = period
        self._out_dir = out_dir
        self._ready_r, self._ready_w = _CTX.Pipe(duplex=False)

    def run(self) -> None:  # in the recorder process
        self._ready_r.close()

        def on_term(signum: int, frame: Any) -> None:
            raise _Terminated()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the experiment, which then stops us
        terminated = False
        error = None
        try:
            self._exp.measure(self._q, self._pid_args, current_pid=os.getpid(), period=self._period,
                              _out_dir=self._out_dir, _ready=self._ready_w)
        except _Terminated:
            terminated = True
        except BaseException as e:
            error = (type(e), e, "".join(traceback.format_tb(e.__traceback__)))
            try:
                pickle.dumps(error)
            except Exception:  # it must cross the pipe
                error = (RuntimeError, RuntimeError(f"{type(e).__name__}: {e}"), error[2])
        if not terminated:
            try:
                self._q._from.put((None, error))
                self._q._from.close()
                self._q._from.join_thread()
            except Exception:
                pass
        if terminated:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        if error is not None:
            sys.exit(1)

    def wait_started(self, timeout: float = 30.0) -> Tuple[Optional[str], List[str]]:
        """(None once the recording runs, else why it could not start; the
        meter's warnings)."""
        self._ready_w.close()
        try:
            if not self._ready_r.poll(timeout):
                return f"the recorder did not start within {timeout:.0f} s", []
            state, detail = self._ready_r.recv()
            return (None, list(detail)) if state == "ok" else (str(detail), [])
        except EOFError:
            self.join(5)
            return f"the recorder ended before the recording started (exit code {self.exitcode})", []
        finally:
            self._ready_r.close()

    def _at_exit(self) -> None:
        # The script ends without STOP_MESSAGE: complete the recording (as a
        # daemon, the process would otherwise be killed with it cut short).
        try:
            if self.is_alive():
                self._q.put(STOP_MESSAGE)
                self.join(30)
        except (ValueError, AssertionError, OSError):
            pass


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
            Default: $WATTMETER_SYSFS_ROOT / $WATTMETER_PROCFS_ROOT, else
            /sys and /proc.
    """

    def __init__(self, driver: Any, model: Any = None, input_size: Any = None, cont: bool = False,
                 *, sysfs_root: Optional[str] = None, procfs_root: Optional[str] = None) -> None:
        import wattmeter

        self.db_driver = driver
        self.sysfs_root = sysfs_root or os.environ.get("WATTMETER_SYSFS_ROOT") or None
        self.procfs_root = procfs_root or os.environ.get("WATTMETER_PROCFS_ROOT") or None
        if not cont and hasattr(driver, "erase"):
            driver.erase()
        try:
            sens = wattmeter.sensors(self.sysfs_root or "/sys", self.procfs_root or "/proc")
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
                          + "; the CPU will be modelled (recorded as modeled_cpu_power, never as intel_power)",
                          RuntimeWarning)

    def measure(self, queue: Any, pid_args: Optional[Iterable[int]], current_pid: Optional[int] = None,
                period: float = 1, measurement_period: float = 2, *, _out_dir: Optional[str] = None,
                _ready: Any = None) -> None:
        """Records until STOP_MESSAGE arrives on ``queue`` (blocking), as
        AIPowerMeter's: pid_args (and their children), or if None the
        parent of this process and its descendants (the recorder itself
        included, its own sampling cost taken out). measure_yourself() and
        measure_from_pid_list() run it in the recorder process."""
        import wattmeter

        if not hasattr(self.db_driver, "new_recording_dir"):
            raise TypeError("measure() needs a driver that stores recordings, such as "
                            "parsers.JsonParser(folder); PrometheusClient is for monitor_machine()")
        period = float(period)
        if not period > 0:
            raise ValueError(f"period must be a positive number of seconds, not {period!r}")
        if pid_args is None:
            pids, include_self = [os.getppid()], True
        else:
            pids, include_self = [int(p) for p in pid_args], False
        # AIPowerMeter's period is the interval of its samples (process CPU
        # shares, memory, power): our process tier. Counters are read at
        # least twice a second so power curves keep their shape; totals are
        # counter differences and do not depend on either.
        m: Any = wattmeter.Meter(_out_dir or self.db_driver.new_recording_dir(), period=min(period, 0.5),
                                 proc_period=period, mem_period=period, pids=pids, include_self=include_self,
                                 sysfs_root=self.sysfs_root, procfs_root=self.procfs_root)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                m.start()
        except BaseException as e:
            if _ready is not None:
                _ready.send(("error", f"{type(e).__name__}: {e}"))
                _ready.close()
            raise
        msgs = [str(w.message) for w in caught]
        if _ready is not None:  # the experiment's process shows the meter's warnings
            _ready.send(("ok", msgs))
            _ready.close()
        else:
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        try:
            _wait_stop(queue, getattr(self, "_parent_pid", None) if current_pid is not None else os.getppid())
        finally:
            m.stop()

    def _recorder(self, pid_args: Optional[List[int]], period: float) -> Tuple[Recorder, RecorderQueue]:
        if not hasattr(self.db_driver, "new_recording_dir"):
            raise TypeError("measure_*() needs a driver that stores recordings, such as "
                            "parsers.JsonParser(folder); PrometheusClient is for monitor_machine()")
        period = float(period)
        if not period > 0:
            raise ValueError(f"period must be a positive number of seconds, not {period!r}")
        q = RecorderQueue()
        self._parent_pid = os.getpid()
        p = Recorder(self, q, pid_args, period, self.db_driver.new_recording_dir())
        p.folder = os.path.abspath(str(getattr(self.db_driver, "folder", "")))
        _RECORDERS.append(p)
        with warnings.catch_warnings():
            # Python >= 3.12 warns when a threaded process forks; the recorder
            # only starts wattmeter's meter and reads its queue (as
            # AIPowerMeter's forked recorder).
            warnings.simplefilter("ignore", DeprecationWarning)
            p.start()
        why, msgs = p.wait_started()
        for msg in msgs:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        if why is not None:
            # A measuring problem must not stop the user's experiment: it
            # runs unrecorded, and says so. p ends (exitcode 1) and q.get()
            # returns its error.
            warnings.warn(f"the experiment runs UNRECORDED: {why}", RuntimeWarning, stacklevel=3)
        atexit.register(p._at_exit)
        return p, q

    def measure_yourself(self, period: float = 1, measurement_period: float = 2) -> Tuple[Recorder, RecorderQueue]:
        """Records this process and its children (started before or after)
        until ``q.put(STOP_MESSAGE)``; returns ``(p, q)``: ``p.join()`` or
        ``q.get()`` wait until the recording is complete on disk.
        ``measurement_period`` (how often AIPowerMeter wrote its file) is
        accepted and not needed: every sample is written as it is taken."""
        return self._recorder(None, period)

    def measure_from_pid_list(self, pid_list: Iterable[int], period: float = 1) -> Tuple[Recorder, RecorderQueue]:
        """Records the processes of pid_list (and their children) until
        ``q.put(STOP_MESSAGE)``; returns ``(p, q)``."""
        pids = [int(p) for p in pid_list]
        if not pids:
            raise ValueError("pid_list is empty: give the PIDs to measure")
        return self._recorder(pids, period)

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
                # the metric recorded longest: in a folder whose segments
                # differ (cont=True over measured and modelled ones), the
                # first metric may cover only some of them
                return max((self.get_duration_metric(name, start=start, end=end) for name in metrics),
                           key=lambda r: r[0])
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
            modeled_j = self.total_("modeled_cpu_power")
            if total_intel_power is None and modeled_j is not None:
                print("total intel power:  not available (no RAPL counters were read)")
            else:
                extra: Tuple[Any, ...] = ()
                if modeled_j is not None:  # cont=True over measured and modelled segments
                    d_rapl = self.get_duration_metric("intel_power")[0]
                    extra = ("(RAPL, over {:.1f} s of the {:.1f} s recorded; the rest is modelled, below, "
                             "and not added)".format(d_rapl, d),)
                print("total intel power: ", total_intel_power, "joules",
                      *((", your experiment consumption: ", rel_intel_power, "joules")
                        if rel_intel_power is not None else ()), *extra)
            if modeled_j is not None:
                rel_m = self.total_("rel_modeled_cpu_power")
                print("MODELED cpu energy (wattmeter's CPU model, no RAPL; not measured): ", modeled_j, "joules",
                      *((", your experiment: ", rel_m, "joules") if rel_m is not None else ()),
                      "over {:.1f} s".format(self.get_duration_metric("modeled_cpu_power")[0]))
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
            att = self.total_("per_gpu_attributable_power")
            whole = ""
            if not att:
                # NVML-generation files hold no attribution: the whole GPU's
                # energy, as AIPowerMeter prints there, and said so
                att = self.total_("per_gpu_nvidia_power") or self.total_("per_gpu_power_draw") or {}
                whole = " (whole GPU: the recording has no per-process attribution)"
            print("Attributable usage per GPU")
            for dev, mx in att.items():
                if mx is None:
                    print("    gpu:", dev, "power draw not available")
                else:
                    print("    gpu: {}: {:0.3f} joules{}".format(dev, mx, whole))

    def split_into_segments(self, curve: List[Dict[str, float]]) -> Curve:
        """A flat curve ([{'date', 'value'}], dates increasing) cut into the
        recording segments: after each segment's last date
        (``self.segments``, as get_segments() returns them)."""
        out: Curve = []
        cur: List[Dict[str, float]] = []
        ends = [time_to_sec(t) for t in self.segments]
        k = 0
        for m in curve:
            while k < len(ends) and m["date"] > ends[k] + 1e-6:
                if cur:
                    out.append(cur)
                cur = []
                k += 1
            cur.append(m)
        out.append(cur)
        return out

    def get_gpu_usage_duration(self) -> Any:
        """Seconds, per GPU, during which the measured processes used it
        (per_gpu_absolute_percent_usage above 0); see get_usage_duration."""
        return get_usage_duration(self.get_curve("per_gpu_absolute_percent_usage"))

    # -- plots ----------------------------------------------------------------------

    def display_2_curves(self, metric_name1: str, metric_name2: str, saveto: Optional[str] = None) -> Any:
        """Plots two metrics against time on two y axes (the first on the
        left in blue, the second on the right in red; per GPU for per-GPU
        metrics). Saves to ``saveto`` if given, else shows the figure.
        Returns the matplotlib Figure."""
        from wattmeter.results import _figure, _need

        names = [metric_name1, metric_name2]
        curves = [self.get_curve(n) for n in names]
        missing = [n for n, c in zip(names, curves) if c is None]
        if missing:
            avail = self.list_metrics()
            raise ValueError("no metric " + " or ".join(repr(n) for n in missing) + " in this recording; it has: "
                             + ", ".join(avail["CPU"] + avail["GPU"] + avail["Experiment"]))
        if saveto:
            fig = _figure("display_2_curves()")(figsize=(9, 4.5), layout="constrained")
            ax = fig.subplots()
            plt = None
        else:
            plt = _need("matplotlib.pyplot", "plot", "display_2_curves()")
            fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
        axes = [ax, ax.twinx()]
        for axis, name, curve, color in zip(axes, names, curves, ("blue", "red")):
            series = curve.items() if isinstance(curve, dict) else [(None, curve)]
            label = name
            for dev, segs in series:
                label = name if dev is None else f"{name}:{dev}"
                for i, seg in enumerate(segs):
                    axis.plot([datetime.datetime.fromtimestamp(p["date"]) for p in seg], [p["value"] for p in seg],
                              color=color, label=label if i == 0 else None,
                              linestyle="-" if dev is None or dev == next(iter(curve)) else "--")
            axis.set_ylabel(label if not isinstance(curve, dict) or len(curve) == 1 else name,
                            color=color, fontsize=14)
        ax.set_xlabel("time")
        for lab in ax.get_xticklabels():
            lab.set_rotation(45)
        if saveto:
            fig.savefig(saveto)
        elif plt is not None:
            plt.show()
        return fig


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
