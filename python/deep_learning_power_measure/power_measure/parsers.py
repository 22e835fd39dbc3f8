"""JsonParser: AIPowerMeter's driver, reading wattmeter recordings and
AIPowerMeter's own ``power_metrics.json`` (both generations).

A folder may hold:

- a wattmeter recording (``meta.json`` + ``samples.jsonl``), e.g. from
  ``wattmeter run -o DIR``: one recording segment;
- wattmeter recordings in sub-folders (``Experiment`` writes one per
  ``measure_*`` call, ``wattmeter-001``, ``wattmeter-002`` ...): one segment each;
- AIPowerMeter's ``power_metrics.json``: one JSON value per line, segments
  separated by lines holding the string ``"END OF RECORDING SEGMENT"``. The
  nvidia-smi generation's GPU fields (``nvidia_draw_absolute``,
  ``per_gpu_attributable_power`` with its ``"all"`` key ...) and the NVML
  generation's (``nvidia_power``, ``per_gpu_nvidia_power`` ...) are both read.

Every wattmeter figure comes from wattmeter's C reader (``wattmeter.load``):
energies are differences of cumulative hardware counters, never integrals.
The mapping of AIPowerMeter's metric names onto a wattmeter recording, with
units, is in docs/aipowermeter.md.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

SEGMENT_END = "END OF RECORDING SEGMENT"

# Metrics whose values are watts: their total is energy in joules.
POWER_METRICS = {
    "intel_power", "rel_intel_power", "total_cpu_power", "psys_power", "uncore_power",
    "total_dram_power", "per_process_cpu_power", "per_process_dram_power", "dram_power",
    "cpu_power", "nvidia_draw_absolute", "nvidia_attributable_power", "per_gpu_power_draw",
    "per_gpu_attributable_power", "nvidia_power", "per_gpu_nvidia_power",
    "modeled_cpu_power", "rel_modeled_cpu_power", "modeled_dram_power", "rel_modeled_dram_power",
    "modeled_psys_power",
}
# Metrics whose values are seconds spent in each sample's interval: their
# total is their sum (AIPowerMeter integrates them over time, giving s²).
COUNT_METRICS = {"absolute_cpu_time_per_pid"}

# Print order of the CPU and GPU groups: the order of AIPowerMeter's docs
# ("Available metrics", docs/usage/in_details), then the metrics those docs
# define later, then wattmeter's modelled ones; others follow in file order.
CPU_ORDER = [
    "per_process_mem_use_abs", "per_process_cpu_uses", "per_process_mem_use_percent",
    "intel_power", "psys_power", "uncore_power", "per_process_cpu_power", "total_cpu_power",
    "per_process_mem_use_uss",
    "rel_intel_power", "total_dram_power", "per_process_dram_power", "cpu_uses", "mem_use_abs",
    "mem_use_percent", "total_mem_use", "absolute_cpu_time_per_pid",
    "modeled_cpu_power", "rel_modeled_cpu_power",
]
GPU_ORDER = [
    "nvidia_draw_absolute", "nvidia_attributable_power", "nvidia_mem_use", "nvidia_sm_use",
    "per_gpu_power_draw", "per_gpu_attributable_power", "per_gpu_estimated_attributable_utilization",
    "per_gpu_attributable_mem_use", "per_gpu_per_pid_utilization_absolute", "per_gpu_absolute_percent_usage",
    "nvidia_power", "nvidia_memory", "nvidia_use_rate", "per_gpu_nvidia_power", "per_gpu_nvidia_memory",
    "per_gpu_nvidia_use_rate",
]

# Modelled energy (no RAPL: wattmeter's CPU model) goes under these names,
# never under the RAPL ones: intel_power and rel_intel_power are measured
# RAPL energy only.
MODELED_NAMES = {"intel_power": "modeled_cpu_power", "rel_intel_power": "rel_modeled_cpu_power",
                 "total_dram_power": "modeled_dram_power", "per_process_dram_power": "rel_modeled_dram_power",
                 "psys_power": "modeled_psys_power"}


class Segment:
    """One recording segment.

    samples: [{"date": Unix seconds, "cpu": {name: value}, "gpu": {name:
    value or {gpu_id: value}}, "energy": {name: J or {gpu_id: J}}}], dates
    increasing. ``energy`` (wattmeter recordings only) holds, for watt metrics,
    the exact energy of the interval ending at that sample.
    exact: for a wattmeter recording, (metric, start, end) -> joules from the
    C reader's counters (a float, a {gpu_id: float}, or None if it has no
    counter for that metric)."""

    def __init__(self, samples: List[Dict[str, Any]], source: str,
                 exact: Optional[Callable[[str, Optional[float], Optional[float]], Any]] = None,
                 results: Any = None) -> None:
        self.samples = samples
        self.source = source
        self.exact = exact
        self.results = results


# ---- AIPowerMeter's power_metrics.json ------------------------------------------------


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _sum_values(d: Dict[str, Any]) -> Optional[float]:
    """Sum of a per-process (or per-PID) dict's numeric values, None if none."""
    vals = [_num(v) for v in d.values()]
    vals2 = [v for v in vals if v is not None]
    return sum(vals2) if vals2 else (0.0 if not d else None)


def _norm_cpu(cpu: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in cpu.items():
        if k == "psys_power" and _num(v) is not None and _num(v) < 0:  # type: ignore[operator]
            continue  # -1: "no psys zone", not a negative power
        if isinstance(v, list):  # uncore_power stored as a one-element list
            nums = [_num(x) for x in v]
            if not nums or any(x is None for x in nums):
                continue
            out[k] = sum(x for x in nums if x is not None)
        elif isinstance(v, dict):  # per process: the total over processes
            s = _sum_values(v)
            if s is not None:
                out[k] = s
        elif _num(v) is not None:
            out[k] = _num(v)
    return out


def _per_gpu(d: Any) -> Dict[str, float]:
    """{gpu: value} from {gpu: number} or {gpu: {pid: number}} (summed); the
    "all" key (a total, not a GPU) is left out."""
    out: Dict[str, float] = {}
    if not isinstance(d, dict):
        return out
    for g, v in d.items():
        if str(g) == "all":
            continue
        if isinstance(v, dict):
            s = _sum_values(v)
            if s is not None:
                out[str(g)] = s
        elif _num(v) is not None:
            out[str(g)] = _num(v)  # type: ignore[assignment]
    return out


def _norm_gpu(gpu: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in gpu.items():
        if isinstance(v, dict):
            out[k] = _per_gpu(v)
        elif _num(v) is not None:
            out[k] = _num(v)
    # the nvidia-smi generation's derived names, as its parser made them
    if "nvidia_draw_absolute" in gpu:
        pga = gpu.get("per_gpu_attributable_power")
        if isinstance(pga, dict):
            allv = _num(pga.get("all"))
            out["nvidia_attributable_power"] = allv if allv is not None else sum(_per_gpu(pga).values())
        if "per_gpu_attributable_mem_use" in gpu:
            out["nvidia_mem_use"] = _per_gpu(gpu["per_gpu_attributable_mem_use"])
        if "per_gpu_absolute_percent_usage" in gpu:
            out["nvidia_sm_use"] = _per_gpu(gpu["per_gpu_absolute_percent_usage"])
    return out


def _parse_date(s: str) -> float:
    # AIPowerMeter writes local time without a zone; it reads it back with
    # datetime.timestamp(), i.e. as local time: so do we.
    return datetime.datetime.fromisoformat(s).timestamp()


def read_power_metrics(path: str) -> List[Segment]:
    """Segments of an AIPowerMeter power_metrics.json."""
    segs: List[Segment] = []
    cur: List[Dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                v = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {lineno} is not JSON ({e}); only AIPowerMeter's "
                                 f"power_metrics.json (one JSON value per line) can be read") from None
            if v == SEGMENT_END:
                if cur:
                    segs.append(Segment(cur, "aipowermeter"))
                cur = []
                continue
            if not isinstance(v, dict) or "date" not in v:
                continue
            m = v.get("metrics") or {}
            cur.append({
                "date": _parse_date(v["date"]),
                "cpu": _norm_cpu(m["cpu"]) if isinstance(m.get("cpu"), dict) else {},
                "gpu": _norm_gpu(m["gpu"]) if isinstance(m.get("gpu"), dict) else {},
                "energy": {},
                "has_cpu": isinstance(m.get("cpu"), dict),
                "has_gpu": isinstance(m.get("gpu"), dict),
            })
    if cur:
        segs.append(Segment(cur, "aipowermeter"))
    return segs


# ---- wattmeter recordings -------------------------------------------------------------


def is_recording(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "meta.json")) and \
        os.path.isfile(os.path.join(path, "samples.jsonl"))


def _ffill(vals: List[Optional[float]]) -> List[Optional[float]]:
    """Last value at or before each index; None before the first."""
    out: List[Optional[float]] = []
    last: Optional[float] = None
    for v in vals:
        if v is not None:
            last = v
        out.append(last)
    return out


def read_wattmeter(path: str) -> Optional[Segment]:
    """A wattmeter recording as one segment of AIPowerMeter samples, one per
    process-tier line (where the attribution ran), each holding the averages
    over the interval since the previous one."""
    import wattmeter

    res = wattmeter.load(path)
    cols: Dict[str, Any] = res.columns()
    det: Dict[str, Any] = res.detail()
    rows: Dict[str, Any] = det["rows"]
    pr: Dict[str, Any] = det["procs"]
    meta: Dict[str, Any] = res.meta()
    t0: Any = meta.get("start_unix_s")
    if t0 is None:
        st = res.start
        t0 = st.timestamp() if st else 0.0
    t0 = float(t0)
    n_cpus = int((meta.get("host") or {}).get("n_cpus") or os.cpu_count() or 1)
    T: List[float] = [float(x) for x in cols.get("t_s", [])]
    n = len(T)
    if n < 2:
        return None
    devices = res.devices
    gpus = res.gpus

    E = {d: [v if v is not None else None for v in cols.get(f"energy_j.{d}", [None] * n)] for d in devices}
    A: Dict[str, Optional[List[Optional[float]]]] = {d: cols.get(f"attributed_j.{d}") for d in devices}
    Ef = {d: _ffill(E[d]) for d in devices}
    Af: Dict[str, Optional[List[Optional[float]]]] = {}
    for d in devices:
        ad = A[d]
        Af[d] = _ffill(ad) if ad else None
    zones = {k: rows[k] for k in rows if k.startswith("zones_energy_j.")}
    core = [k for k in zones if k.endswith("/core")]
    uncore = [k for k in zones if k.endswith("/uncore")]
    mem_used = cols.get("mem_used_bytes", [None] * n)

    by_row: Dict[int, List[int]] = {}
    for i, r in enumerate(pr.get("row", [])):
        by_row.setdefault(int(r), []).append(i)
    tier = set(by_row)
    for d in devices:
        for i, v in enumerate(A[d] or []):
            if v is not None:
                tier.add(i)
    sel = sorted(tier | {0, n - 1})

    def pcol(name: str) -> List[Optional[float]]:
        return pr.get(name) or [None] * len(pr.get("row", []))

    p_pid, p_share, p_cpu_s = pcol("pid"), pcol("cpu_share"), pcol("cpu_s")
    p_pss, p_rss, p_uss = pcol("pss_bytes"), pcol("rss_bytes"), pcol("uss_bytes")
    p_energy = {d: pcol(f"energy_j.{d}") for d in devices}
    p_gmem = {g: pcol(f"dev_mem_bytes.{g}") for g in gpus}

    def delta(ff: Optional[List[Optional[float]]], a: int, b: int) -> Optional[float]:
        if ff is None:
            return None
        va, vb = ff[a], ff[b]
        return (vb if vb is not None else 0.0) - (va if va is not None else 0.0)

    def zone_delta(labels: List[str], a: int, b: int) -> Optional[float]:
        if not labels:
            return None
        tot = 0.0
        for k in labels:
            va, vb = zones[k][a], zones[k][b]
            if va is None or vb is None:
                return None
            tot += vb - va
        return tot

    def gauge_mean(g: str, name: str, a: int, b: int) -> Optional[float]:
        vals = rows.get(f"gauges.{g}.{name}")
        if not vals:
            return None
        xs = [v for v in vals[a + 1: b + 1] if v is not None]
        return sum(xs) / len(xs) if xs else None

    method: Dict[str, str] = dict(getattr(res, "method", {}) or {})

    def nm(dev: str, name: str) -> str:
        """The RAPL name for measured energy; a name that says "modeled" else."""
        return MODELED_NAMES[name] if method.get(dev) == "modeled" else name

    samples: List[Dict[str, Any]] = []
    for k in range(1, len(sel)):
        a, b = sel[k - 1], sel[k]
        dt = T[b] - T[a]
        if dt <= 0:
            continue
        cpu: Dict[str, Any] = {}
        gpu: Dict[str, Any] = {}
        en: Dict[str, Any] = {}

        def put(group: Dict[str, Any], name: str, joules: Optional[float]) -> None:
            if joules is not None:
                group[name] = joules / dt
                en[name] = joules

        for dev, name in (("cpu", "intel_power"), ("dram", "total_dram_power"), ("psys", "psys_power")):
            if dev in devices:
                put(cpu, nm(dev, name), delta(Ef[dev], a, b))
        if "cpu" in devices and Af.get("cpu") is not None:
            put(cpu, nm("cpu", "rel_intel_power"), delta(Af["cpu"], a, b))
        e_core = zone_delta(core, a, b)
        put(cpu, "total_cpu_power", e_core)
        put(cpu, "uncore_power", zone_delta(uncore, a, b))

        entries = by_row.get(b, [])
        if entries:
            shares = [p_share[i] or 0.0 for i in entries]
            cpu["per_process_cpu_uses"] = sum(shares)
            cpu["absolute_cpu_time_per_pid"] = sum(p_cpu_s[i] or 0.0 for i in entries)
            mem_abs = [p_pss[i] if p_pss[i] is not None else p_rss[i] for i in entries]
            if any(m is not None for m in mem_abs):
                tot_mem = sum(m for m in mem_abs if m is not None)
                cpu["per_process_mem_use_abs"] = tot_mem
                cpu["mem_use_abs"] = tot_mem
                used = mem_used[b]
                if used:
                    cpu["per_process_mem_use_percent"] = tot_mem / used
                    cpu["mem_use_percent"] = tot_mem / used
            uss = [p_uss[i] for i in entries if p_uss[i] is not None]
            if uss:
                cpu["per_process_mem_use_uss"] = sum(uss)
            cpu["cpu_uses"] = sum(p_cpu_s[i] or 0.0 for i in entries) / dt / n_cpus
            if e_core is not None:
                put(cpu, "per_process_cpu_power", sum(shares) * e_core)
        if "dram" in devices and Af.get("dram") is not None:
            put(cpu, nm("dram", "per_process_dram_power"), delta(Af["dram"], a, b))
        if mem_used[b] is not None:
            cpu["total_mem_use"] = mem_used[b]

        if gpus:
            per: Dict[str, Dict[str, float]] = {name: {} for name in (
                "per_gpu_power_draw", "per_gpu_attributable_power", "per_gpu_nvidia_power",
                "per_gpu_nvidia_memory", "per_gpu_nvidia_use_rate", "per_gpu_estimated_attributable_utilization",
                "per_gpu_absolute_percent_usage", "per_gpu_per_pid_utilization_absolute",
                "per_gpu_attributable_mem_use", "nvidia_mem_use", "nvidia_sm_use")}
            pen: Dict[str, Dict[str, float]] = {"per_gpu_power_draw": {}, "per_gpu_attributable_power": {},
                                                "per_gpu_nvidia_power": {}}
            for g in gpus:
                idx = g[3:]
                eg = delta(Ef[g], a, b)
                ag = delta(Af[g], a, b) if Af.get(g) is not None else None
                util = gauge_mean(g, "util", a, b)
                mem = gauge_mean(g, "mem_used_bytes", a, b)
                if eg is not None:
                    for name in ("per_gpu_power_draw", "per_gpu_nvidia_power"):
                        per[name][idx] = eg / dt
                        pen[name][idx] = eg
                if ag is not None:
                    per["per_gpu_attributable_power"][idx] = ag / dt
                    pen["per_gpu_attributable_power"][idx] = ag
                share = (ag / eg) if (ag is not None and eg) else None
                if share is not None:
                    per["per_gpu_estimated_attributable_utilization"][idx] = share
                if util is not None:
                    per["per_gpu_nvidia_use_rate"][idx] = util * 100.0
                    if share is not None:
                        per["per_gpu_absolute_percent_usage"][idx] = share * util
                        per["per_gpu_per_pid_utilization_absolute"][idx] = share * util
                        per["nvidia_sm_use"][idx] = share * util
                if mem is not None:
                    per["per_gpu_nvidia_memory"][idx] = mem
                pm: List[float] = [x for x in (p_gmem[g][i] for i in entries) if x is not None]
                if pm:
                    per["per_gpu_attributable_mem_use"][idx] = sum(pm)
                    per["nvidia_mem_use"][idx] = sum(pm)
            for name, dd in per.items():
                if dd:
                    gpu[name] = dd
            for name, dd in pen.items():
                if dd:
                    en[name] = dd
            if per["per_gpu_power_draw"]:
                s = sum(pen["per_gpu_power_draw"].values())
                gpu["nvidia_draw_absolute"] = gpu["nvidia_power"] = s / dt
                en["nvidia_draw_absolute"] = en["nvidia_power"] = s
            if per["per_gpu_attributable_power"]:
                s = sum(pen["per_gpu_attributable_power"].values())
                gpu["nvidia_attributable_power"] = s / dt
                en["nvidia_attributable_power"] = s
            if per["per_gpu_nvidia_memory"]:
                gpu["nvidia_memory"] = sum(per["per_gpu_nvidia_memory"].values())
            if per["per_gpu_nvidia_use_rate"]:
                u = per["per_gpu_nvidia_use_rate"]
                gpu["nvidia_use_rate"] = sum(u.values()) / len(u)
        samples.append({"date": t0 + T[b], "cpu": cpu, "gpu": gpu, "energy": en,
                        "has_cpu": bool(cpu), "has_gpu": bool(gpu)})
    if not samples:
        return None
    # The recording's start as the first sample, holding the first interval's
    # values, so curves and durations cover the whole run (AIPowerMeter's
    # first sample already closes an interval).
    first = samples[0]
    samples.insert(0, {"date": t0 + T[sel[0]], "cpu": dict(first["cpu"]), "gpu": dict(first["gpu"]),
                       "energy": {}, "has_cpu": first["has_cpu"], "has_gpu": first["has_gpu"]})

    series: Dict[str, Any] = {
        nm("cpu", "intel_power"): ["cpu"], nm("dram", "total_dram_power"): ["dram"],
        nm("psys", "psys_power"): ["psys"],
        nm("cpu", "rel_intel_power"): ["cpu_attributed"],
        nm("dram", "per_process_dram_power"): ["dram_attributed"],
        "total_cpu_power": core, "uncore_power": uncore,
        "nvidia_draw_absolute": gpus, "nvidia_power": gpus,
        "nvidia_attributable_power": [g + "_attributed" for g in gpus],
        "per_gpu_power_draw": {g[3:]: [g] for g in gpus},
        "per_gpu_nvidia_power": {g[3:]: [g] for g in gpus},
        "per_gpu_attributable_power": {g[3:]: [g + "_attributed"] for g in gpus},
    }

    def exact(metric: str, start: Optional[float], end: Optional[float]) -> Any:
        names = series.get(metric)
        if not names:
            return None
        rs = None if start is None else start - t0
        re_ = None if end is None else end - t0

        def tot(ns: List[str]) -> float:
            try:
                return sum(res.total(s, rs, re_) for s in ns)
            except ValueError:  # the window misses this segment
                return 0.0

        if isinstance(names, dict):
            return {g: tot(ns) for g, ns in names.items()}
        return tot(names)

    return Segment(samples, "wattmeter", exact, res)


# ---- the driver ---------------------------------------------------------------------


class JsonParser:
    """Reads (and, for Experiment, writes) the recordings in ``location``,
    as AIPowerMeter's JsonParser does; see the module's docstring."""

    def __init__(self, location: str, meta_data: Any = "") -> None:
        self.folder = str(location)
        self.metadata_filename = os.path.join(self.folder, "metadata.json")
        self.power_metric_filename = os.path.join(self.folder, "power_metrics.json")
        self.exp_metric_filename = os.path.join(self.folder, "results_exp.json")
        self.model_card_file = os.path.join(self.folder, "model_summary.json")
        self.wattmeter_logfile = os.path.join(self.folder, "omegawatt.csv")
        self.wattemeter_exec: Optional[str] = None  # AIPowerMeter's external wattmeter: not used
        if not isinstance(meta_data, (str, dict)):
            raise TypeError("meta_data argument of JsonParser must be of type str or dict, found: "
                            + str(meta_data.__class__))
        self.metadata: Dict[str, Any] = {"description": meta_data} if isinstance(meta_data, str) else dict(meta_data)
        self._segments: Optional[List[Segment]] = None
        # As AIPowerMeter: the folder and its metadata.json (the description
        # and the date) are created here if missing. A folder that cannot be
        # written (read-only, another user's) can still be read.
        try:
            self._write_metadata()
        except OSError:
            pass

    # -- writing (Experiment) --------------------------------------------------------

    def _write_metadata(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        if not os.path.isfile(self.metadata_filename):
            md = dict(self.metadata)
            md["date"] = datetime.datetime.today().__str__()
            with open(self.metadata_filename, "w", encoding="utf-8") as f:
                json.dump(md, f)

    def recordings(self) -> List[str]:
        """The wattmeter recordings in the folder: itself, or its sub-folders."""
        if not os.path.isdir(self.folder):
            return []
        if is_recording(self.folder):
            return [self.folder]
        subs = [os.path.join(self.folder, d) for d in sorted(os.listdir(self.folder))]
        return [d for d in subs if os.path.isdir(d) and is_recording(d)]

    def new_recording_dir(self) -> str:
        """A fresh sub-folder for the next recording segment."""
        self._write_metadata()
        n = 1
        while True:
            d = os.path.join(self.folder, f"wattmeter-{n:03d}")
            if not os.path.exists(d):
                self._segments = None
                return d
            n += 1

    def erase(self) -> None:
        """Deletes the recordings of this folder (cont=False): the wattmeter
        recordings and AIPowerMeter's files; other files are left alone."""
        if not os.path.isdir(self.folder):
            return
        for d in self.recordings():
            if os.path.abspath(d) == os.path.abspath(self.folder):
                for f in ("meta.json", "samples.jsonl"):
                    os.remove(os.path.join(d, f))
            else:
                shutil.rmtree(d)
        for f in (self.power_metric_filename, self.exp_metric_filename, self.model_card_file,
                  self.metadata_filename):
            if os.path.isfile(f):
                os.remove(f)
        self._segments = None

    def save_power_metrics(self, metrics: Dict[str, Any]) -> None:
        """Appends a sample in AIPowerMeter's format (for code that calls it
        directly; Experiment records with wattmeter instead)."""
        os.makedirs(self.folder, exist_ok=True)
        with open(self.power_metric_filename, "a", encoding="utf-8") as f:
            f.write(json.dumps({"date": datetime.datetime.now().__str__(), "metrics": metrics}) + "\n")
        self._segments = None

    def close_driver(self) -> None:
        if os.path.isfile(self.power_metric_filename):
            with open(self.power_metric_filename, "a", encoding="utf-8") as f:
                f.write(json.dumps(SEGMENT_END) + "\n")
        self._segments = None

    def save_exp_metrics(self, metrics: Dict[str, Any]) -> None:
        os.makedirs(self.folder, exist_ok=True)
        with open(self.exp_metric_filename, "a", encoding="utf-8") as f:
            f.write(json.dumps({"date": datetime.datetime.now().__str__(), "metrics": metrics}) + "\n")

    def save_model_card(self, model_card: Any) -> None:
        os.makedirs(self.folder, exist_ok=True)
        with open(self.model_card_file, "w", encoding="utf-8") as f:
            json.dump(model_card, f)

    def save_wattmeter_metrics(self) -> None:
        return None

    # -- reading ---------------------------------------------------------------------

    def get_description(self) -> Optional[str]:
        if not os.path.isfile(self.metadata_filename):
            return None
        with open(self.metadata_filename, encoding="utf-8") as f:
            d = json.load(f).get("description")
        return d or None

    def get_model_card(self) -> Any:
        if os.path.isfile(self.model_card_file):
            with open(self.model_card_file, encoding="utf-8") as f:
                return json.load(f)
        return None

    def segments(self) -> List[Segment]:
        """Every recording segment of the folder, oldest first."""
        exp = sys.modules.get(__name__.rpartition(".")[0] + ".experiment")
        if exp is not None and self._segments is None:
            exp._settle(self.folder)  # recorders of this process told to stop: let them finish
        if self._segments is None:
            segs: List[Segment] = []
            if os.path.isfile(self.power_metric_filename):
                segs += read_power_metrics(self.power_metric_filename)
            for d in self.recordings():
                s = read_wattmeter(d)
                if s is not None:
                    segs.append(s)
            segs.sort(key=lambda s: s.samples[0]["date"])
            self._segments = segs
        return self._segments

    def get_segments(self) -> List[datetime.datetime]:
        """The date of the last sample of every segment but the last, as
        AIPowerMeter's get_segments returns."""
        segs = self.segments()
        return [datetime.datetime.fromtimestamp(s.samples[-1]["date"]) for s in segs[:-1]]

    def _load(self, group: str) -> Optional[Dict[str, Any]]:
        metrics: Dict[str, Any] = {}
        for s in self.segments():
            for smp in s.samples:
                date = datetime.datetime.fromtimestamp(smp["date"])
                for k, v in smp[group].items():
                    if isinstance(v, dict):
                        m = metrics.setdefault(k, {})
                        for g, x in v.items():
                            e = m.setdefault(g, {"dates": [], "values": []})
                            e["dates"].append(date)
                            e["values"].append(x)
                    else:
                        e = metrics.setdefault(k, {"dates": [], "values": []})
                        e["dates"].append(date)
                        e["values"].append(v)
        return metrics or None

    def load_cpu_metrics(self) -> Optional[Dict[str, Any]]:
        return self._load("cpu")

    def load_gpu_metrics(self) -> Optional[Dict[str, Any]]:
        return self._load("gpu")

    def load_exp_metrics(self) -> Optional[Dict[str, Any]]:
        """results_exp.json (accuracy, latency ... per epoch), as AIPowerMeter reads it."""
        if not os.path.isfile(self.exp_metric_filename):
            return None
        with open(self.exp_metric_filename, encoding="utf-8") as f:
            results = json.load(f)
        metrics: Dict[str, Any] = {}
        for result in results:
            if isinstance(results, dict):
                result = results[result]
            date = datetime.datetime.fromisoformat(result["end_training_epoch"])
            for k in result:
                if k == "end_training_epoch":
                    continue
                e = metrics.setdefault(k, {"dates": [], "values": []})
                e["dates"].append(date)
                e["values"].append(result[k])
        return metrics or None

    def load_wattmeter_metrics(self) -> None:
        return None  # AIPowerMeter's external OmegaWatt logs: not supported

    def load_metrics(self) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]],
                                    Optional[Dict[str, Any]], None]:
        """(cpu, gpu, exp, wattmeter) metrics, None where absent, as AIPowerMeter."""
        return self.load_cpu_metrics(), self.load_gpu_metrics(), self.load_exp_metrics(), None
