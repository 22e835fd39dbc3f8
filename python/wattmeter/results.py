"""Results of a recording: the analysis API.

Every number comes from the C reader (``wm_report_json``,
``wm_report_columns_json``, ``wm_report_detail_json``,
``wm_report_window_json``); this module only asks it questions and arranges
the answers into dicts, tables, DataFrames and figures. Energies are never
integrated here: a device's energy over any window is the difference of its
cumulative counter at the window's sample boundaries, computed in C.

pandas and matplotlib are optional: ``to_pandas()`` needs ``pip install
pandas``, ``plot()`` needs ``pip install matplotlib`` (into the environment
wattmeter is installed in; from wattmeter's source tree, ``pip install
'.[pandas]'`` or ``'.[plot]'`` does the same); without them those raise
``ModuleNotFoundError`` saying which command to run, and everything else
works.

A measurement that could not be recorded (``Meter`` fell back to measuring
unrecorded) gives Results that hold the summary only: totals, duration,
averages over the whole run, ``str()`` and ``report()`` work from it;
what needs the time series (windows, peaks, columns, DataFrames, plots)
raises ``RuntimeError`` saying the run was not recorded and why.
"""

from __future__ import annotations

import datetime as _dt
import json
from array import array
import math
import os
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _native

# what _native.recording_render renders, and its series' tables (wattmeter.h)
_R_SUMMARY, _R_TEXT, _R_COLUMNS, _R_DETAIL, _R_WINDOW = 0, 1, 2, 3, 4
_T_COLUMNS, _T_ROWS, _T_PROCS = 0, 1, 2

# ---- optional dependencies ------------------------------------------------------


def _need(module: str, extra: str, what: str) -> Any:
    """Imports an optional module, or raises ModuleNotFoundError with a
    command that installs it where wattmeter is installed (not a bare "No
    module named ..."). wattmeter is not on the package index, so
    ``pip install 'wattmeter[extra]'`` would fail: the package itself is
    named, and the extra only from the source tree."""
    import importlib

    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as e:  # ModuleNotFoundError, or a broken install
        err = ModuleNotFoundError(
            f"{what} needs {top}, which is not installed: {sys.executable} -m pip install {top} "
            f"(or, from wattmeter's source tree, pip install '.[{extra}]')"
        )
        err.name = top
        raise err from e


def _pandas(what: str) -> Any:
    return _need("pandas", "pandas", what)


def _figure(what: str) -> Any:
    """matplotlib's Figure class (no pyplot: no GUI backend is touched, so
    it works headless; a returned Figure still shows in Jupyter)."""
    _need("matplotlib", "plot", what)
    return _need("matplotlib.figure", "plot", what).Figure


# ---- units ------------------------------------------------------------------------


def _unit(metric: str) -> str:
    """The unit of a metric name, from its suffix (names carry their units)."""
    last = metric.rsplit(".", 1)[-1]
    head = metric.split(".", 1)[0]
    if head in ("energy_j", "attributed_j", "zones_energy_j"):
        return "J"
    if head == "power_w":
        return "W"
    for suffix, unit in (("_bytes", "bytes"), ("_j", "J"), ("_w", "W"), ("_s", "s"),
                         ("_mhz", "MHz"), ("_c", "degC")):
        if last.endswith(suffix):
            return unit
    if last in ("util", "mem_util", "cpu_util"):
        return "fraction"
    return ""


# ---- the summary --------------------------------------------------------------------


class Summary(dict):  # type: ignore[type-arg]
    """The summary of a recording (docs/recording.md "Summary") as a dict;
    ``str()`` of it is the readable table ``wattmeter report`` prints.

    It is also callable (``r.summary()`` returns itself), so ``r.summary``
    and ``r.summary()`` are the same dict."""

    def __init__(self, data: Dict[str, Any], dir: str, rec: Any = None) -> None:
        super().__init__(data)
        self._dir = dir
        self._rec = rec  # the recording parsed in C, when Results has it

    def __call__(self) -> "Summary":
        return self

    def __str__(self) -> str:
        if self.get("recorded") is False:
            return _unrecorded_text(self)
        if self._rec is not None:
            return _native.recording_render(self._rec, _R_TEXT, 10)
        return _native.report_text(self._dir, 10)


def _unrecorded_text(s: Dict[str, Any]) -> str:
    """The human summary of an unrecorded measurement, from its totals (as
    ``wattmeter run`` prints one): duration, energy and average power per
    device, and why nothing was recorded."""
    d = float(s.get("duration_s") or 0.0)
    energy: Dict[str, float] = dict(s.get("energy_j", {}))
    method: Dict[str, str] = dict(s.get("method", {}))
    cmd = " ".join(str(a) for a in s.get("command") or [])
    cmd = "".join("?" if ord(c) < 0x20 or c == "\x7f" else c for c in cmd)
    lines = [f"wattmeter: {cmd + '  ' if cmd else ''}({d:.2f} s, NOT RECORDED)"]
    for name, e in energy.items():
        avg = f"  avg {e / d:.1f} W" if d > 0 and not name.endswith("_attributed") else ""
        lines.append(f"  {name:<16} {e:.2f} J{avg}  {method.get(name, 'measured')}")
    lines.append(f"  not recorded: {s.get('why_not_recorded') or 'unknown'}")
    return "\n".join(lines) + "\n"


# ---- Results ------------------------------------------------------------------------

Number = Union[int, float]


class Results:
    """One recording, read back by the C reader.

    Attributes (the summary's figures):
        dir: the recording folder.
        duration_s: seconds from the first to the last sample.
        energy_j: device totals (``cpu``, ``dram``, ``psys``, ``gpu0`` ...
            where present) and the energy attributed to the measured
            processes (``cpu_attributed`` ...), in joules.
        method: for every key of energy_j, ``"measured"`` or ``"modeled"``.
        gpu_info: per GPU (the summary's ``gpus``) its device, index, name,
            uuid, energy_j, attributed_j, source (``nvml``, as in
            ``per_gpu()`` and meta.json), source_detail (``energy-counter`` or
            ``power-integrated-*``) and used_by_run; energy_j also holds
            ``gpu`` (all GPUs), ``gpu_run`` (the GPUs the run uses) and
            ``gpu_attributed``.
        processes: per PID (a str) its command line, attributed energy, CPU time.
        samples_short: the samples stop more than a period before the run's
            end (a full disk, a folder copied while the run wrote): energies
            are those up to the last sample, averages over the samples' span.
        summary: the whole summary, a dict (also callable; ``str()`` is a table).
        running_pid: the pid of the process still writing the recording
            (``str(summary)`` then says "still running (pid N)"), else None.
        unwritten: spans of sample lines the writer could not write (a full
            disk): ``{"from_s", "to_s", "samples", "error", "resumed"}``.

    Analysis: ``metrics()``, ``total()``, ``average()``, ``max()``,
    ``duration()``, ``window()``, ``per_device()``, ``per_gpu()``,
    ``per_process()``, ``to_pandas()``, ``plot()``; windows of work:
    ``windows()``, ``window_stats()``, ``marks()``; served requests:
    ``requests()``, ``request_stats()``.
    """

    def __init__(self, dir: str, summary: Dict[str, Any], rec: Any = None) -> None:
        self.dir = dir
        self.summary: Summary = Summary(summary, dir, rec)
        #: False for a measurement that could not be recorded: then only the
        #: summary's totals exist (see the module's docstring).
        self.recorded: bool = summary.get("recorded") is not False
        self.duration_s: float = float(summary.get("duration_s") or 0.0)
        self.energy_j: Dict[str, float] = dict(summary.get("energy_j", {}))
        self.method: Dict[str, str] = dict(summary.get("method", {}))
        self.processes: Dict[str, Any] = dict(summary.get("processes", {}))
        #: processes outside the measured command's tree (``include_*``): their
        #: count, CPU and attributed energy per device, apart (they are in the
        #: attributed totals too); None when nothing was included.
        self.included: Optional[Dict[str, Any]] = summary.get("included")
        self.power_w: Dict[str, Any] = dict(summary.get("power_w", {}))
        self.gpu_info: List[Dict[str, Any]] = list(summary.get("gpus", []))
        # per device with gaps: unreadable_s, causes, energy measured/missing (docs/recording.md "Gaps")
        self.gaps: Dict[str, Any] = dict(summary.get("gaps", {}))
        self.truncated: bool = bool(summary.get("truncated", False))
        self.samples_short: bool = bool(summary.get("samples_short", False))
        self.complete: bool = bool(summary.get("complete", False))
        # The writer's pid while the run is still being recorded (it holds
        # the recording's lock), else None; spans of lines it could not
        # write (disk full ...), each {from_s, to_s, samples, error, resumed}.
        rp = summary.get("running_pid")
        self.running_pid: Optional[int] = int(rp) if rp is not None else None
        self.unwritten: List[Dict[str, Any]] = list(summary.get("unwritten", []))
        # The recording parsed once, in C (released with this object): every
        # query below reads it, never the files again.
        self._rec: Any = rec
        self._series_names: Optional[List[Dict[str, int]]] = None
        self._arrays: Dict[Tuple[int, str], "array[float]"] = {}
        self._columns: Optional[Dict[str, List[Optional[float]]]] = None
        self._detail: Optional[Dict[str, Dict[str, List[Optional[float]]]]] = None
        self._meta: Optional[Dict[str, Any]] = None

    # -- the parsed recording (C) ---------------------------------------------------

    def _r(self) -> Any:
        """The recording parsed in C, read on first use."""
        if self._rec is None:
            self._rec = _native.recording_load(self.dir)
        return self._rec

    def _names(self) -> List[Dict[str, int]]:
        """Per table (columns, rows, procs): {series name: its index}, in
        the table's order; self._present: the names with a value."""
        if self._series_names is None:
            self._series_names = []
            self._present: List[set] = []  # type: ignore[type-arg]
            for table in (_T_COLUMNS, _T_ROWS, _T_PROCS):
                ser = _native.recording_series(self._r(), table)
                self._series_names.append({n: i for i, (n, _) in enumerate(ser)})
                self._present.append({n for n, has in ser if has})
        return self._series_names

    def _table_of(self, metric: str) -> Optional[Tuple[int, int]]:
        """(table, index) of a per-sample series (columns, then rows)."""
        names = self._names()
        for table in (_T_COLUMNS, _T_ROWS):
            if metric in names[table]:
                return table, names[table][metric]
        return None

    def _array(self, table: int, name: str) -> "array[float]":
        """A series' values as array('d') (NaN where absent), from C's buffer."""
        key = (table, name)
        a = self._arrays.get(key)
        if a is None:
            a = array("d")
            a.frombytes(_native.recording_column(self._r(), table, self._names()[table][name]))
            self._arrays[key] = a
        return a

    def _need_recording(self, what: str) -> None:
        """Raises RuntimeError for what needs the time series of a
        measurement that was not recorded."""
        if not self.recorded:
            why = self.summary.get("why_not_recorded") or "unknown"
            raise RuntimeError(
                f"{what} needs the recording, and this measurement was not recorded ({why}): "
                "only its totals are kept (energy_j, duration_s, total(), average(), str()); "
                "give Meter(output_dir=...) a folder that can hold a new recording")

    def _whole_run(self, what: str, start: Optional[float], end: Optional[float]) -> None:
        if start is not None or end is not None:
            self._need_recording(f"{what} with start/end")

    # -- what is in it --------------------------------------------------------------

    @property
    def modeled(self) -> bool:
        """True if any figure is modelled rather than measured."""
        return any(v == "modeled" for v in self.method.values())

    @property
    def devices(self) -> List[str]:
        """The devices of the recording, in meta.json order: ``cpu``,
        ``dram``, ``psys``, ``gpu0`` ... (whatever the machine had)."""
        if not self.recorded:  # no meta.json: the devices the totals name
            return [k for k in self.energy_j if not k.endswith("_attributed")]
        return list(self.summary.get("source", {}))

    @property
    def gpus(self) -> List[str]:
        """The GPU devices (``gpu0``, ``gpu1`` ...), empty without GPUs."""
        return [d for d in self.devices if d.startswith("gpu") and d[3:].isdigit()]

    @property
    def start(self) -> Optional[_dt.datetime]:
        """Wall-clock start of the recording (UTC), None if unknown."""
        s = self.summary.get("start_utc")
        if not s:
            return None
        try:
            return _dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))
        except ValueError:
            return None

    def meta(self) -> Dict[str, Any]:
        """meta.json as written (host, sensors, devices, periods ...)."""
        self._need_recording("meta()")
        if self._meta is None:
            with open(os.path.join(self.dir, "meta.json"), encoding="utf-8") as f:
                self._meta = json.load(f)
        return self._meta

    def columns(self) -> Dict[str, List[Optional[float]]]:
        """Time series as plain lists: ``t_s``, ``energy_j.cpu``, ``power_w.cpu``,
        ``attributed_j.cpu``, ``cpu_util`` ... (one element per sample line,
        None where a line lacks the value; see docs/recording.md "Columns")."""
        self._need_recording("columns()")
        if self._columns is None:
            self._columns = json.loads(_native.recording_render(self._r(), _R_COLUMNS))
        return self._columns

    def detail(self) -> Dict[str, Dict[str, List[Optional[float]]]]:
        """What the summary folds away, from the C reader: ``rows`` (``t_s``,
        every RAPL zone's cumulative ``zones_energy_j.<label>``, device gauges
        ``gauges.<dev>.<name>``, one element per sample line) and ``procs``
        (one element per process per process-tier line: ``row``, ``t_s``,
        ``pid``, ``cpu_s``, ``cpu_share``, ``rss_bytes``, ``pss_bytes``,
        ``uss_bytes``, ``mem_pct``, ``energy_j.<dev>`` ...)."""
        self._need_recording("detail()")
        if self._detail is None:
            self._detail = json.loads(_native.recording_render(self._r(), _R_DETAIL))
        return self._detail

    def metrics(self) -> Dict[str, str]:
        """Every metric of this recording with its unit, e.g.
        ``{"energy_j.cpu": "J", "power_w.cpu": "W", "attributed_j.cpu": "J",
        "cpu_util": "fraction", "zones_energy_j.package-0/core": "J",
        "gauges.gpu0.util": "fraction", "procs.pss_bytes": "bytes", ...}``.
        A metric no line carries is not listed. Unrecorded: the energies of
        the totals only."""
        out: Dict[str, str] = {}
        if not self.recorded:
            return {f"energy_j.{k}" if not k.endswith("_attributed") else
                    f"attributed_j.{k[:-len('_attributed')]}": "J" for k in self.energy_j}
        names = self._names()
        for table in (_T_COLUMNS, _T_ROWS):
            for name in names[table]:
                if name != "t_s" and name in self._present[table]:
                    out[name] = _unit(name)
        for name in names[_T_PROCS]:
            if name in ("row", "t_s", "pid", "ppid", "alive", "starttime_ticks"):
                continue
            if name in self._present[_T_PROCS]:
                out["procs." + name] = "%" if name == "mem_pct" else (
                    "fraction" if name.endswith("share") else _unit(name))
        return out

    # -- totals and statistics ------------------------------------------------------

    def window(self, start: Optional[float] = None, end: Optional[float] = None) -> Dict[str, Any]:
        """Energy between ``start`` and ``end`` (seconds since the start of the
        recording; None = open), cut at sample boundaries (from the first
        sample at or after start to the last at or before end), computed in C
        as differences of the cumulative counters: ``{"start_s", "end_s",
        "duration_s", "energy_j": {dev, dev_attributed}, "processes": {pid:
        {dev: J}}}``. Attributed and per-process energy, recorded on
        process-tier lines only, are cut at those lines.

        Raises ValueError for start > end or a window holding no sample,
        RuntimeError for a measurement that was not recorded."""
        self._need_recording("window()")
        try:
            w: Dict[str, Any] = json.loads(_native.recording_render(
                self._r(), _R_WINDOW, 5, None if start is None else float(start),
                None if end is None else float(end)))
            return w
        except OSError as e:
            import errno as _errno

            if e.errno in (_errno.EINVAL, _errno.ERANGE, _errno.ENODATA):
                raise ValueError(e.strerror) from None
            raise

    def _energy_key(self, metric: str) -> Optional[str]:
        """The window's energy_j key for an energy-like metric name, else None."""
        m = metric
        for prefix, suffix in (("energy_j.", ""), ("power_w.", ""), ("attributed_j.", "_attributed")):
            if m.startswith(prefix):
                return m[len(prefix):] + suffix
        if m in self.devices or (m.endswith("_attributed") and m[: -len("_attributed")] in self.devices):
            return m
        return None

    def _check_metric(self, metric: str) -> None:
        known = set(self.metrics()) | set(self.devices) | {d + "_attributed" for d in self.devices}
        if metric not in known:
            raise KeyError(
                f"no metric {metric!r} in {self.dir}; available: {', '.join(sorted(self.metrics()))}")

    def total(self, metric: str = "cpu", start: Optional[float] = None, end: Optional[float] = None) -> float:
        """Energy in joules of ``metric`` between start and end (seconds
        since the start; None = the whole run): a device (``"cpu"``,
        ``"gpu0"``, or ``"energy_j.cpu"`` / ``"power_w.cpu"``), its attributed
        part (``"cpu_attributed"`` or ``"attributed_j.cpu"``), or a RAPL zone
        (``"zones_energy_j.package-0/core"``). Exact: the difference of the
        cumulative counter at the window's sample boundaries (C reader).

        Raises KeyError for an unknown metric, ValueError for one that is not
        an energy (utilisation, memory: use average() or max())."""
        if not self.recorded:
            self._whole_run("total()", start, end)
            key = self._energy_key(metric)
            if key is None or key not in self.energy_j:
                raise KeyError(f"no energy {metric!r} in this unrecorded measurement; "
                               f"available: {', '.join(self.energy_j)}")
            return float(self.energy_j[key])
        self._check_metric(metric)
        key = self._energy_key(metric)
        if key is not None:
            w = self.window(start, end)
            return float(w["energy_j"].get(key, 0.0))
        if metric.startswith("zones_energy_j."):
            w = self.window(start, end)
            vals = self._array(_T_ROWS, metric)
            return _cumulative_between(vals, w["first_row"], w["last_row"])
        if metric.startswith("procs.energy_j."):  # all measured processes together
            dev = metric[len("procs.energy_j."):]
            w = self.window(start, end)
            return float(sum(p.get(dev) or 0.0 for p in w.get("processes", {}).values()))
        raise ValueError(f"{metric!r} is not an energy; use average() or max() for it")

    def duration(self, start: Optional[float] = None, end: Optional[float] = None) -> float:
        """Seconds between the window's sample boundaries (the whole run's
        duration_s without a window)."""
        if start is None and end is None:
            return self.duration_s
        return float(self.window(start, end)["duration_s"])

    def _series(self, metric: str) -> Tuple[List[Optional[float]], List[Optional[float]]]:
        """(t_s, values) of a per-sample metric (columns or detail rows)."""
        cols = self.columns()
        if metric in cols:
            return cols["t_s"], cols[metric]
        rows = self.detail()["rows"]
        if metric in rows:
            return rows["t_s"], rows[metric]
        if metric.startswith("procs."):
            p = self.detail()["procs"]
            name = metric[len("procs."):]
            # the measured processes together, per process-tier line
            sums: Dict[float, float] = {}
            for t, v in zip(p["t_s"], p.get(name, [])):
                if v is not None and t is not None:
                    sums[t] = sums.get(t, 0.0) + v
            ts = sorted(sums)
            return list(ts), [sums[t] for t in ts]
        raise KeyError(f"no metric {metric!r} in {self.dir}; available: {', '.join(sorted(self.metrics()))}")

    def average(self, metric: str = "cpu", start: Optional[float] = None, end: Optional[float] = None) -> float:
        """Average over the window: for an energy metric (a device, its
        attributed part, a zone) the average power in watts = exact energy /
        duration; for a gauge (``cpu_util``, ``gauges.gpu0.util``,
        ``mem_used_bytes``, ``procs.pss_bytes`` ...) the mean of its samples in
        the window. NaN if the window has no duration or no sample."""
        if not self.recorded:
            e = self.total(metric, start, end)
            return e / self.duration_s if self.duration_s > 0 else math.nan
        self._check_metric(metric)
        if self._energy_key(metric) is not None or metric.startswith(("zones_energy_j.", "procs.energy_j.")):
            e = self.total(metric, start, end)
            d = self.duration(start, end)
            return e / d if d > 0 else math.nan
        ti = self._table_of(metric)
        if ti is not None:  # in C over the window's rows (binary search on t_s)
            n, total, _ = _native.recording_stats(self._r(), ti[0], ti[1], start, end)
            return total / n if n else math.nan
        vals = _in_window(*self._series(metric), start, end)
        return sum(vals) / len(vals) if vals else math.nan

    def max(self, metric: str = "cpu", start: Optional[float] = None, end: Optional[float] = None) -> float:
        """Highest value in the window: for a device, its peak power in watts
        (over one counter period, ``power_w.<dev>``); for a gauge its highest
        sample. NaN if the window has none."""
        self._need_recording("max()")
        self._check_metric(metric)
        key = self._energy_key(metric)
        if key is not None and not key.endswith("_attributed"):
            metric = "power_w." + key
        elif key is not None:
            raise ValueError(f"{metric!r} is recorded per process interval; use total() or average()")
        ti = self._table_of(metric)
        if ti is not None:
            n, _, top = _native.recording_stats(self._r(), ti[0], ti[1], start, end)
            return float(top) if n else math.nan
        vals = _in_window(*self._series(metric), start, end)
        return max(vals) if vals else math.nan

    # -- breakdowns -----------------------------------------------------------------

    def per_device(self, start: Optional[float] = None, end: Optional[float] = None) -> Dict[str, Dict[str, Any]]:
        """Per device (cpu, dram, psys, gpu0 ...): ``energy_j``,
        ``attributed_j`` (None where not attributed), ``avg_w``, ``peak_w``,
        ``method`` and ``source``, over the window (the whole run by default).
        Unrecorded: the whole run only, without peak_w (None) or source ("")."""
        if not self.recorded:
            self._whole_run("per_device()", start, end)
            dur = self.duration_s
            return {dev: {
                "energy_j": self.energy_j.get(dev),
                "attributed_j": self.energy_j.get(dev + "_attributed"),
                "avg_w": (self.energy_j[dev] / dur) if dur > 0 else None,
                "peak_w": None,
                "method": self.method.get(dev, "unknown"),
                "source": "",
            } for dev in self.devices}
        w = self.window(start, end)
        d = float(w["duration_s"])
        out: Dict[str, Dict[str, Any]] = {}
        for dev in self.devices:
            e = w["energy_j"].get(dev)
            a = w["energy_j"].get(dev + "_attributed")
            try:
                peak = self.max(dev, start, end)
            except KeyError:
                peak = math.nan
            out[dev] = {
                "energy_j": e,
                "attributed_j": a,
                "avg_w": (e / d) if (e is not None and d > 0) else None,
                "peak_w": None if math.isnan(peak) else peak,
                "method": self.method.get(dev, "unknown"),
                "source": self.summary.get("source", {}).get(dev, ""),
            }
        return out

    def per_gpu(self, start: Optional[float] = None, end: Optional[float] = None) -> Dict[str, Dict[str, Any]]:
        """per_device() for the GPUs only, each with its ``source_detail``
        (``energy-counter``, ``power-integrated-*``, as in gpu_info) and the
        averages of its gauges (``util``, ``mem_used_bytes`` ... where
        recorded). Empty without GPUs."""
        devs = self.per_device(start, end)
        if not self.recorded:
            return {g: devs[g] for g in self.gpus}
        rows = self._names()[_T_ROWS]
        info = {str(g.get("device")): g for g in self.gpu_info}
        out: Dict[str, Dict[str, Any]] = {}
        for g in self.gpus:
            row = dict(devs[g])
            row["source_detail"] = info.get(g, {}).get("source_detail", "")
            for name in rows:
                if name.startswith(f"gauges.{g}."):
                    v = self.average(name, start, end)
                    row["avg_" + name.split(".", 2)[2]] = None if math.isnan(v) else v
            out[g] = row
        return out

    def per_process(self, start: Optional[float] = None, end: Optional[float] = None) -> Dict[int, Dict[str, Any]]:
        """Per PID: ``cmdline``, ``energy_j`` {device: J attributed in the
        window}, and over the whole run ``cpu_s`` and ``peak_rss_bytes``;
        largest energy first."""
        self._need_recording("per_process()")
        w = self.window(start, end)
        out: Dict[int, Dict[str, Any]] = {}
        for pid, e in w.get("processes", {}).items():
            p = self.processes.get(pid, {})
            out[int(pid)] = {
                "cmdline": p.get("cmdline", ""),
                "energy_j": dict(e),
                "cpu_s": p.get("cpu_s"),
                "peak_rss_bytes": p.get("peak_rss_bytes"),
            }
        return dict(sorted(out.items(), key=lambda kv: -sum(v or 0.0 for v in kv[1]["energy_j"].values())))

    def report(self, top: int = 5) -> str:
        """The human summary, as ``wattmeter report`` prints it (for an
        unrecorded measurement, its totals and why it was not recorded)."""
        if not self.recorded:
            return _unrecorded_text(self.summary)
        return _native.recording_render(self._r(), _R_TEXT, top)

    def __str__(self) -> str:
        return str(self.summary)

    # -- windows (energy per unit of work) ----------------------------------------

    def _windows_doc(self, name: Optional[str]) -> Dict[str, Any]:
        self._need_recording("windows()")
        doc: Dict[str, Any] = json.loads(_native.report_windows_json(self.dir, name))
        return doc

    def windows(self, name: Optional[str] = None, *, frame: Optional[bool] = None) -> Any:
        """The recording's windows (``Meter.window``, ``wattmeter mark``), in
        order of their end, optionally only those named ``name``.

        One row per window: ``name``, ``id``, ``start_s``, ``end_s``,
        ``duration_s`` (s since the start), ``open`` (never ended: reported
        up to the stop, or the last sample of a killed run), ``energy_j``
        (J, the devices that do not overlap: psys contains cpu and dram),
        ``energy_j.<dev>``, ``attributed_j`` and ``attributed_j.<dev>``
        (the measured processes' share), ``uncertainty_j.<dev>`` (a GPU
        window shorter than its counter's update interval), each attribute
        and count under its own key, ``j_per_<count>``, and ``notes``.

        A pandas DataFrame when pandas is installed (``frame=False``: a list
        of dicts always; ``frame=True``: pandas or an ImportError)."""
        rows: List[Dict[str, Any]] = []
        for w in self._windows_doc(name).get("windows", []):
            row: Dict[str, Any] = {
                "name": w.get("name"), "id": w.get("id"), "start_s": w.get("start_s"),
                "end_s": w.get("end_s"), "duration_s": w.get("duration_s"), "open": bool(w.get("open")),
                "energy_j": w.get("total_j"),
                "attributed_j": sum(float(v) for v in w.get("attributed_j", {}).values()),
            }
            for k, v in w.get("attrs", {}).items():
                row.setdefault(k, v)
            for k, v in w.get("counts", {}).items():
                row.setdefault(k, v)
            for dev, v in w.get("energy_j", {}).items():
                row[f"energy_j.{dev}"] = v
            for dev, v in w.get("attributed_j", {}).items():
                row[f"attributed_j.{dev}"] = v
            for dev, v in w.get("uncertainty_j", {}).items():
                row[f"uncertainty_j.{dev}"] = v
            for k, v in w.get("j_per", {}).items():
                row[f"j_per_{k}"] = v
            row["notes"] = list(w.get("notes", []))
            rows.append(row)
        if frame is False:
            return rows
        try:
            pd = _pandas("windows(frame=True)")
        except ImportError:
            if frame:
                raise
            return rows
        return pd.DataFrame(rows)

    def window_stats(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """Per window name: ``count``; ``total_j``, ``mean_j``, ``p50_j``,
        ``p99_j`` (energy, J, nearest-rank percentiles); the same of
        ``duration_s`` (``total_s`` ...); the counts summed and
        ``j_per_<count>`` (total energy / total count)."""
        out: List[Dict[str, Any]] = []
        for g in self._windows_doc(name).get("groups", []):
            e, d = g.get("energy_j", {}), g.get("duration_s", {})
            row: Dict[str, Any] = {"name": g.get("name"), "count": g.get("count", 0)}
            for k in ("total", "mean", "p50", "p99"):
                row[f"{k}_j"] = e.get(k)
            for k in ("total", "mean", "p50", "p99"):
                row[f"{k}_s"] = d.get(k)
            for k, v in g.get("counts", {}).items():
                row[k] = v
            for k, v in g.get("j_per", {}).items():
                row[f"j_per_{k}"] = v
            out.append(row)
        return out

    def marks(self) -> List[Dict[str, Any]]:
        """Instant marks (``Meter.mark``): name, t_s, attrs and the cumulative
        energy_j per device at the mark."""
        return list(self._windows_doc(None).get("marks", []))

    # -- requests: energy per served request ------------------------------------------

    def _requests_doc(self) -> Dict[str, Any]:
        self._need_recording("requests()")
        doc: Dict[str, Any] = json.loads(_native.report_requests_json(self.dir))
        return doc

    def requests(self, *, frame: Optional[bool] = None) -> Any:
        """The recording's requests (requests.jsonl: ``Meter.request``, the
        openai/ollama integrations, ``wattmeter proxy``), in order of
        finalisation; the split is the C core's (docs/architecture.md
        "Requests").

        One row per request: ``id``, ``t_start_s``, ``t_first_token_s``,
        ``t_end_s``, ``duration_s`` (s since the start), ``path``, ``model``,
        ``status``, ``stream``, ``prompt_tokens``, ``completion_tokens``,
        ``tokens_source``, ``outcome``, ``energy_j`` (J, the devices that do
        not overlap), ``energy_j.<dev>``, ``active_energy_j`` (the server's
        idle power x the request's ``server_share_s`` taken off, with the
        idle power known when its line was written), ``server_share_s``,
        ``method`` (``tokens``, ``time``, ``tokens+time``), the caller's
        other attributes, ``notes``.

        A pandas DataFrame when pandas is installed (``frame=False``: a list
        of dicts always; ``frame=True``: pandas or an ImportError)."""
        rows: List[Dict[str, Any]] = []
        for r in self._requests_doc().get("requests", []):
            row: Dict[str, Any] = {k: r.get(k) for k in (
                "id", "t_start_s", "t_first_token_s", "t_end_s", "duration_s", "path", "model", "status",
                "stream", "prompt_tokens", "completion_tokens", "tokens_source", "outcome")}
            row["energy_j"] = r.get("total_j")
            row["active_energy_j"] = r.get("active_total_j")
            row["server_share_s"] = r.get("server_share_s")
            row["method"] = r.get("method")
            for dev, v in (r.get("energy_j") or {}).items():
                row[f"energy_j.{dev}"] = v
            for dev, v in (r.get("active_energy_j") or {}).items():
                row[f"active_energy_j.{dev}"] = v
            for k, v in (r.get("attrs") or {}).items():
                row.setdefault(k, v)
            row["notes"] = list(r.get("notes", []))
            rows.append(row)
        if frame is False:
            return rows
        try:
            pd = _pandas("requests(frame=True)")
        except ImportError:
            if frame:
                raise
            return rows
        return pd.DataFrame(rows)

    def request_stats(self) -> Dict[str, Any]:
        """The figures over the requests, as ``wattmeter report --json``'s
        ``requests``: ``count``; ``energy_j`` and ``active_energy_j``
        (``total``, ``mean``, ``p50``, ``p99``, J per request);
        ``prompt_tokens``, ``completion_tokens``; ``j_per_prompt_token``,
        ``j_per_completion_token`` (all the requests' energy over all their
        tokens of that kind); ``tokens_per_j``; ``by_model`` (the same per
        model); ``idle`` (``energy_j`` per device, ``s``, ``share`` of the
        server's energy, ``power_w``); ``conservation`` (per device:
        ``requests_j`` + ``idle_j`` = ``sum_j`` against ``server_j`` and
        ``samples_j``, ``ok``); ``summary`` (the file's summary line)."""
        doc = self._requests_doc()
        doc.pop("requests", None)
        return doc

    # -- pandas ---------------------------------------------------------------------

    def to_pandas(self, form: str = "wide") -> Any:
        """Time series as a pandas DataFrame (needs ``pip install 'wattmeter[pandas]'``).

        ``form="wide"``: indexed by ``t_s`` (seconds since the start), one
        column per metric: cumulative ``energy_j.<dev>`` (J), ``power_w.<dev>``
        (W), cumulative ``attributed_j.<dev>`` (J), ``cpu_util``,
        ``mem_used_bytes``, ``self_cpu_s``, and the zones and gauges where
        recorded. ``attributed_j`` is recorded on process-tier lines only; on
        the lines between, the last value is carried forward (0 before the
        first), which is exact for a cumulative counter as of that line.

        ``form="long"``: one row per (t_s, metric) with ``series``, ``device``,
        ``value`` and ``unit`` columns, absent values left out (for seaborn,
        groupby, or concatenating runs)."""
        self._need_recording("to_pandas()")
        pd = _pandas("to_pandas()")
        if form not in ("wide", "long"):
            raise ValueError(f"form must be 'wide' or 'long', not {form!r}")
        np = _need("numpy", "pandas", "to_pandas()")
        # from C's column buffers: no JSON, no Python list per value
        names = self._names()
        cols: Dict[str, Any] = {}
        for table in (_T_COLUMNS, _T_ROWS):
            for k, i in names[table].items():
                if table == _T_ROWS and k == "t_s":
                    continue
                cols[k] = np.frombuffer(_native.recording_column(self._r(), table, i), dtype=np.float64)
        df = pd.DataFrame(cols, copy=False)
        if "t_s" in df.columns:
            df = df.set_index("t_s")
        for c in df.columns:
            if c.startswith("attributed_j."):
                s = df[c].ffill()
                df[c] = s.fillna(0.0)
        df.attrs["method"] = dict(self.method)
        df.attrs["dir"] = self.dir
        if form == "wide":
            return df
        long = df.reset_index().melt(id_vars="t_s", var_name="metric", value_name="value")
        long = long.dropna(subset=["value"])
        parts = long["metric"].str.split(".", n=1, expand=True)
        long["series"] = parts[0]
        long["device"] = parts[1].fillna("") if parts.shape[1] > 1 else ""
        long["unit"] = long["metric"].map(_unit)
        long = long[["t_s", "metric", "series", "device", "value", "unit"]].reset_index(drop=True)
        long.attrs = dict(df.attrs)
        return long

    def processes_frame(self) -> Any:
        """Per-process attributed energy as a pandas DataFrame indexed by PID."""
        pd = _pandas("processes_frame()")
        rows = []
        for pid, p in self.processes.items():
            row = {"pid": int(pid), "cmdline": p.get("cmdline", ""), "cpu_s": p.get("cpu_s", 0.0),
                   "included": bool(p.get("included", False))}
            for dev, e in p.get("energy_j", {}).items():
                row[f"energy_j.{dev}"] = e
            rows.append(row)
        return pd.DataFrame(rows).set_index("pid") if rows else pd.DataFrame()

    # -- plots ----------------------------------------------------------------------

    def attributed_power(self, device: str) -> Tuple[List[float], List[float]]:
        """(t_s, W): the power attributed to the measured processes over each
        process interval, ending at each process-tier line (from the C
        reader's cumulative attributed_j; empty if the device is not
        attributed)."""
        cols = self.columns()
        a = cols.get(f"attributed_j.{device}")
        if not a:
            return [], []
        ts: List[float] = []
        ws: List[float] = []
        prev_t: Optional[float] = None
        prev_a = 0.0
        for t, v in zip(cols["t_s"], a):
            if v is None or t is None:
                continue
            if prev_t is None:
                prev_t, prev_a = t, v
                ts.append(t)
                ws.append(0.0)
                continue
            if t > prev_t:
                ts.append(t)
                ws.append((v - prev_a) / (t - prev_t))
                prev_t, prev_a = t, v
        return ts, ws

    def plot(self, devices: Optional[Sequence[str]] = None, top: int = 8,
             figsize: Tuple[float, float] = (9.0, 6.5), title: Optional[str] = None) -> Any:
        """A matplotlib Figure (needs ``pip install 'wattmeter[plot]'``) with
        two panels: power over time per device, the part attributed to the
        measured processes shaded under each attributed device's curve
        (modelled series dashed and labelled so); and the energy attributed
        to each of the ``top`` processes, per device. Save it with
        ``fig.savefig("run.png")``."""
        self._need_recording("plot()")
        Figure = _figure("plot()")
        cols = self.columns()
        t = cols.get("t_s", [])
        devs = list(devices) if devices is not None else self.devices
        fig = Figure(figsize=figsize, layout="constrained")
        ax, axp = fig.subplots(2, 1, height_ratios=[3, 2])
        for dev in devs:
            p = cols.get(f"power_w.{dev}")
            if p is None:
                continue
            pts = [(x, y) for x, y in zip(t, p) if x is not None and y is not None]
            if not pts:
                continue
            modeled = self.method.get(dev) == "modeled"
            (line,) = ax.plot([x for x, _ in pts], [y for _, y in pts],
                              linestyle="--" if modeled else "-",
                              label=f"{dev} ({'MODELED' if modeled else 'measured'})")
            at, aw = self.attributed_power(dev)
            if len(at) > 1 and any(w > 0 for w in aw):
                ax.fill_between(at, aw, step="pre", alpha=0.3, color=line.get_color(), linewidth=0,
                                label=f"{dev}: attributed to the measured processes")
        ax.set_xlabel("time since start (s)")
        ax.set_ylabel("power (W)")
        ax.set_ylim(bottom=0)
        if ax.lines:  # headroom for the legend inside the axes
            ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
        ax.set_title(title or f"{os.path.basename(os.path.normpath(self.dir))}: power per device")
        if ax.lines:
            ax.legend(loc="upper left", fontsize="small", ncol=2)
        procs = list(self.per_process().items())[:top]
        if procs:
            pdevs = [d for d in self.devices if any(p["energy_j"].get(d) for _, p in procs)]
            labels = [f"{pid} {_short_cmd(p['cmdline'])}" for pid, p in procs]
            left = [0.0] * len(procs)
            for d in pdevs:
                vals = [p["energy_j"].get(d) or 0.0 for _, p in procs]
                axp.barh(labels, vals, left=left, label=d)
                left = [a + b for a, b in zip(left, vals)]
            axp.invert_yaxis()
            axp.legend(loc="lower right", fontsize="small")
        axp.set_xlabel("energy attributed (J)")
        axp.set_title("energy per process")
        return fig

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v:.3f} J ({self.method.get(k, '?')})" for k, v in self.energy_j.items())
        return f"<wattmeter.Results {self.duration_s:.2f} s: {parts}>"


# The hatch of the attributed part in Comparison.plot(): one colour that
# shows on every bar colour of matplotlib's default cycle.
_HATCH_COLOR = "white"


def _short_cmd(cmdline: Optional[str], width: int = 28) -> str:
    """A command line short enough for an axis label: the program's base
    name and its first arguments."""
    words = (cmdline or "").split()
    if not words:
        return "?"
    s = " ".join(os.path.basename(w) if w.startswith("/") else w for w in words)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def _cumulative_between(vals: Sequence[Optional[float]], first: int, last: int) -> float:
    """Difference of a cumulative series (given on some lines only) between
    rows first and last: each side is the last value at or before that row,
    0 before any (every counter starts at 0). Absent values: None or NaN."""
    def at(b: int) -> float:
        for i in range(min(b, len(vals) - 1), -1, -1):
            v = vals[i]
            if v is not None and v == v:
                return float(v)
        return 0.0

    return at(last) - at(first)


def _in_window(t: Sequence[Optional[float]], v: Sequence[Optional[float]],
               start: Optional[float], end: Optional[float]) -> List[float]:
    return [float(y) for x, y in zip(t, v)
            if x is not None and y is not None
            and (start is None or x >= start) and (end is None or x <= end)]


def load(dir: Union[str, "os.PathLike[str]"]) -> Results:
    """Reads a recording folder (even one cut short by a crash) and returns
    its Results. Raises OSError naming the problem if it cannot be read."""
    d = os.fspath(dir)
    rec = _native.recording_load(d)
    return Results(d, json.loads(_native.recording_render(rec, _R_SUMMARY)), rec)


# ---- several runs -----------------------------------------------------------------


class Comparison:
    """Several runs side by side (``wattmeter.compare([...])``).

    ``str()`` is a table (one row per run: duration, energy and average power
    per device, attributed energy); ``summary()`` the same as a list of
    dicts; ``to_pandas()`` a DataFrame; ``plot()`` a Figure with energy per
    device per run, and power over time of every run."""

    def __init__(self, runs: Sequence[Results], names: Optional[Sequence[str]] = None) -> None:
        if not runs:
            raise ValueError("compare() needs at least one recording")
        self.runs: List[Results] = list(runs)
        if names is None:
            names = [(os.path.basename(os.path.normpath(r.dir)) or r.dir) if r.recorded else f"unrecorded-{k + 1}"
                     for k, r in enumerate(self.runs)]
        if len(names) != len(self.runs):
            raise ValueError(f"{len(names)} names for {len(self.runs)} runs")
        self.names: List[str] = list(names)
        devs: List[str] = []
        for r in self.runs:
            for d in r.devices:
                if d not in devs:
                    devs.append(d)
        self.devices: List[str] = devs

    def summary(self) -> List[Dict[str, Any]]:
        """One dict per run: ``run``, ``dir``, ``duration_s``, and per device
        ``energy_j.<dev>``, ``avg_w.<dev>``, ``attributed_j.<dev>``,
        ``method.<dev>`` (None where a run lacks the device)."""
        out = []
        for name, r in zip(self.names, self.runs):
            row: Dict[str, Any] = {"run": name, "dir": r.dir, "duration_s": r.duration_s}
            for d in self.devices:
                e = r.energy_j.get(d)
                row[f"energy_j.{d}"] = e
                # the C summary's average: over the span the samples cover
                row[f"avg_w.{d}"] = (r.power_w.get(d) or {}).get("avg") if e is not None else None
                row[f"attributed_j.{d}"] = r.energy_j.get(d + "_attributed")
                row[f"method.{d}"] = r.method.get(d)
            out.append(row)
        return out

    def __str__(self) -> str:
        head = ["run", "duration"]
        for d in self.devices:
            head += [f"{d} J", f"{d} avg W", f"{d} attributed J"]
        lines = [head]
        for row in self.summary():
            cells = [str(row["run"]), f"{row['duration_s']:.2f} s"]
            for d in self.devices:
                e, w, a = row[f"energy_j.{d}"], row[f"avg_w.{d}"], row[f"attributed_j.{d}"]
                mark = " (modeled)" if row[f"method.{d}"] == "modeled" else ""
                cells += ["-" if e is None else f"{e:.1f}{mark}",
                          "-" if w is None else f"{w:.1f}",
                          "-" if a is None else f"{a:.1f}"]
            lines.append(cells)
        widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(wd) if i == 0 else c.rjust(wd)
                                   for i, (c, wd) in enumerate(zip(l, widths))) for l in lines)

    def to_pandas(self) -> Any:
        """The summary as a DataFrame indexed by run (needs wattmeter[pandas])."""
        pd = _pandas("Comparison.to_pandas()")
        return pd.DataFrame(self.summary()).set_index("run")

    def plot(self, figsize: Tuple[float, float] = (9.0, 6.5)) -> Any:
        """A Figure: energy per device per run (grouped bars, attributed part
        hatched), and the CPU power over time of each run (needs wattmeter[plot])."""
        Figure = _figure("Comparison.plot()")
        fig = Figure(figsize=figsize, layout="constrained")
        axb, axt = fig.subplots(2, 1)
        n = len(self.devices)
        width = 0.8 / max(n, 1)
        xs = list(range(len(self.runs)))
        for k, d in enumerate(self.devices):
            vals = [r.energy_j.get(d) or 0.0 for r in self.runs]
            att = [r.energy_j.get(d + "_attributed") or 0.0 for r in self.runs]
            pos = [x - 0.4 + width * (k + 0.5) for x in xs]
            bars = axb.bar(pos, vals, width, label=d)
            if any(att):
                # The hatch is drawn in the edge colour: in the bar's own
                # colour, over the bar, it cannot be seen.
                axb.bar(pos, att, width, color="none", edgecolor=_HATCH_COLOR, hatch="//", linewidth=0)
        axb.set_xticks(xs, self.names)
        axb.set_ylabel("energy (J)")
        axb.set_title("energy per device (hatched: attributed to the measured processes)")
        axb.legend(fontsize="small")
        dev = "cpu" if "cpu" in self.devices else (self.devices[0] if self.devices else None)
        if dev:
            for name, r in zip(self.names, self.runs):
                if not r.recorded:  # totals only: no curve to draw
                    continue
                c = r.columns()
                pts = [(x, y) for x, y in zip(c.get("t_s", []), c.get(f"power_w.{dev}", []))
                       if x is not None and y is not None]
                axt.plot([x for x, _ in pts], [y for _, y in pts], label=name)
            axt.set_xlabel("time since start (s)")
            axt.set_ylabel(f"{dev} power (W)")
            axt.legend(fontsize="small")
        return fig


def compare(runs: Iterable[Union[str, "os.PathLike[str]", Results]],
            names: Optional[Sequence[str]] = None) -> Comparison:
    """Several recordings side by side: ``print(wattmeter.compare(["runs/a",
    "runs/b"]))`` prints a table; ``.plot()`` draws them; ``.to_pandas()``
    gives a DataFrame. Accepts folders or Results."""
    rs = [r if isinstance(r, Results) else load(r) for r in runs]
    return Comparison(rs, names)
