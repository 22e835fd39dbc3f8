"""Results of a recording, computed by the C reader (never re-implemented here)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from . import _native


class Results:
    """The summary of one recording (see docs/recording.md "Summary").

    Attributes:
        dir: the recording folder.
        duration_s: seconds from the first to the last sample.
        energy_j: device totals (``cpu``, ``dram``, ``psys`` where present) and
            the energy attributed to the measured processes
            (``cpu_attributed``, ``dram_attributed``), in joules.
            With NVIDIA GPUs: ``gpu0`` ..., ``gpu`` (all GPUs), ``gpu_run`` (the
            GPUs the run uses) and ``gpu_attributed``.
        method: for every key of energy_j, ``"measured"`` or ``"modeled"``.
        gpus: per GPU its index, name, uuid, energy_j, attributed_j, source
            (``energy-counter`` or ``power-integrated-*``) and used_by_run.
        processes: per PID (a str) its command line, attributed energy, CPU time.
        summary: the whole summary dict.
    """

    def __init__(self, dir: str, summary: Dict[str, Any]) -> None:
        self.dir = dir
        self.summary = summary
        self.duration_s: float = float(summary.get("duration_s", 0.0))
        self.energy_j: Dict[str, float] = dict(summary.get("energy_j", {}))
        self.method: Dict[str, str] = dict(summary.get("method", {}))
        self.processes: Dict[str, Any] = dict(summary.get("processes", {}))
        self.power_w: Dict[str, Any] = dict(summary.get("power_w", {}))
        self.gpus: List[Dict[str, Any]] = list(summary.get("gpus", []))
        self.truncated: bool = bool(summary.get("truncated", False))
        self.complete: bool = bool(summary.get("complete", False))

    @property
    def modeled(self) -> bool:
        """True if any figure is modelled rather than measured."""
        return any(v == "modeled" for v in self.method.values())

    def report(self, top: int = 5) -> str:
        """The human summary, as ``wattmeter report`` prints it."""
        return _native.report_text(self.dir, top)

    def columns(self) -> Dict[str, list]:
        """Time series as plain lists: ``t_s``, ``energy_j.cpu``, ``power_w.cpu`` ..."""
        return json.loads(_native.report_columns_json(self.dir))

    def to_pandas(self) -> Any:
        """Time series as a pandas DataFrame indexed by ``t_s`` (seconds since
        the start); energies are cumulative joules, powers watts."""
        import pandas as pd

        cols = self.columns()
        df = pd.DataFrame(cols)
        if "t_s" in df.columns:
            df = df.set_index("t_s")
        df.attrs["method"] = dict(self.method)
        df.attrs["dir"] = self.dir
        return df

    def processes_frame(self) -> Any:
        """Per-process attributed energy as a pandas DataFrame indexed by PID."""
        import pandas as pd

        rows = []
        for pid, p in self.processes.items():
            row = {"pid": int(pid), "cmdline": p.get("cmdline", ""), "cpu_s": p.get("cpu_s", 0.0)}
            for dev, e in p.get("energy_j", {}).items():
                row[f"energy_j.{dev}"] = e
            rows.append(row)
        return pd.DataFrame(rows).set_index("pid") if rows else pd.DataFrame()

    def plot(self, ax: Optional[Any] = None) -> Any:
        """Power per device over time (matplotlib); modelled series are dashed
        and labelled so."""
        import matplotlib.pyplot as plt

        df = self.to_pandas()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3.5))
        for col in df.columns:
            if not col.startswith("power_w."):
                continue
            dev = col.split(".", 1)[1]
            modeled = self.method.get(dev) == "modeled"
            ax.plot(df.index, df[col], linestyle="--" if modeled else "-",
                    label=f"{dev} ({'MODELED' if modeled else 'measured'})")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("power (W)")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v:.3f} J ({self.method.get(k, '?')})" for k, v in self.energy_j.items())
        return f"<wattmeter.Results {self.duration_s:.2f} s: {parts}>"


def load(dir: str) -> Results:
    """Reads a recording folder (even one cut short by a crash) and returns
    its Results. Raises OSError naming the problem if it cannot be read."""
    return Results(str(dir), json.loads(_native.report_json(str(dir))))
