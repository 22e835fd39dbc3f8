"""PyTorch Lightning callback: a window per training batch, epoch and
validation run, and their energy through ``self.log`` (every logger the
Trainer has gets them)::

    from wattmeter.integrations.lightning import WattmeterCallback
    trainer = lightning.Trainer(callbacks=[WattmeterCallback()], max_epochs=3)
    trainer.fit(model, data)

Every ``log_every_n_steps`` steps it logs ``wattmeter/j_per_step``,
``wattmeter/j_per_sample`` (samples = the batch's first dimension) and
``wattmeter/j_per_token`` (when the batch is a mapping with ``input_ids`` or
``attention_mask``) over the steps since the last log, each from its step's
own window, ``wattmeter/energy_j`` (the run's energy so far, cpu + dram +
gpu), and after validation ``wattmeter/val_energy_j``. The recording goes
to ``output_dir`` (default: ``<trainer.default_root_dir>/wattmeter``);
``sysfs_root`` defaults to $WATTMETER_SYSFS_ROOT; other Meter options pass
through. Imports Lightning only when this module is imported
(``lightning``, else ``pytorch_lightning``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Dict, List, Optional

from ..meter import Meter, Window
from ._tail import WindowsTail

try:
    _pl: Any = importlib.import_module("lightning.pytorch")
except ImportError:  # the older package name
    _pl = importlib.import_module("pytorch_lightning")
_Base: Any = _pl.Callback


def _batch_counts(batch: Any) -> Dict[str, float]:
    """samples (first dimension) and tokens (a mapping's input_ids/attention_mask)."""
    out: Dict[str, float] = {}
    first: Any = None
    if isinstance(batch, dict):
        mask = batch.get("attention_mask")
        ids = batch.get("input_ids")
        if mask is not None and hasattr(mask, "sum"):
            out["tokens"] = float(mask.sum())
        elif ids is not None and hasattr(ids, "numel"):
            out["tokens"] = float(ids.numel())
        first = ids if ids is not None else next(iter(batch.values()), None)
    elif isinstance(batch, (list, tuple)) and batch:
        first = batch[0]
    else:
        first = batch
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0:
        out["samples"] = float(shape[0])
    return out


class WattmeterCallback(_Base):  # type: ignore[misc]
    """Energy per step, per sample, per token and per epoch for Lightning."""

    def __init__(self, output_dir: Optional[str] = None, **meter_options: Any) -> None:
        super().__init__()
        self.output_dir = output_dir
        meter_options.setdefault("sysfs_root", os.environ.get("WATTMETER_SYSFS_ROOT") or None)
        self.meter_options = meter_options
        self.meter: Optional[Meter] = None
        self._tail: Optional[WindowsTail] = None
        self._step: Optional[Window] = None
        self._epoch: Optional[Window] = None
        self._val: Optional[Window] = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.meter is not None or not trainer.is_global_zero:
            return
        out = self.output_dir or os.path.join(trainer.default_root_dir, "wattmeter")
        if os.path.exists(os.path.join(out, "samples.jsonl")):
            n = 2
            while os.path.exists(f"{out}-{n}"):
                n += 1
            out = f"{out}-{n}"
        self.meter = Meter(out, **self.meter_options).start()
        self._tail = WindowsTail(self.meter.dir) if self.meter.dir else None

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        for w in (self._step, self._epoch, self._val):
            if w is not None and w.id is not None:
                w.end()
        self._step = self._epoch = self._val = None
        if self.meter is not None and self.meter.running:
            self.meter.stop()

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.meter is not None:
            self._epoch = self.meter.window("epoch", epoch=int(trainer.current_epoch)).begin()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._epoch is not None:
            self._epoch.end()
            self._epoch = None

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.meter is not None:
            self._step = self.meter.window("step", step=int(trainer.global_step) + 1,
                                           epoch=int(trainer.current_epoch)).begin()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        w, self._step = self._step, None
        if w is None:
            return
        counts = _batch_counts(batch)
        if counts:
            w.count(**counts)
        w.end()
        every = int(getattr(trainer, "log_every_n_steps", 50) or 50)
        if int(trainer.global_step) % every == 0:
            self._log(pl_module, self._figures(trainer, "step"))

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.meter is not None and not trainer.sanity_checking:
            self._val = self.meter.window("eval", step=int(trainer.global_step)).begin()

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._val is not None:
            self._val.end()
            self._val = None
            self._log(pl_module, self._figures(trainer, "eval"), on_step=False)

    def _figures(self, trainer: Any, kind: str) -> Dict[str, float]:
        m = self.meter
        if m is None or self._tail is None or not m.running or m.attached:
            return {}
        m.mark("log", step=int(trainer.global_step))
        m.flush_windows()
        new: List[Dict[str, Any]] = self._tail.read()
        out: Dict[str, float] = {}
        steps = [w for w in new if w.get("event") == "end" and w.get("name") == "step"]
        if steps and kind == "step":
            e = sum(float(w.get("total_j", 0.0)) for w in steps)
            out["wattmeter/j_per_step"] = e / len(steps)
            for c in ("samples", "tokens"):
                n = sum(float(w.get("counts", {}).get(c, 0)) for w in steps)
                if n > 0:
                    out[f"wattmeter/j_per_{c[:-1]}"] = e / n
        vals = [w for w in new if w.get("event") == "end" and w.get("name") == "eval"]
        if vals:
            out["wattmeter/val_energy_j"] = sum(float(w.get("total_j", 0.0)) for w in vals)
        marks = [w for w in new if w.get("event") == "mark" and w.get("name") == "log"]
        if marks:
            out["wattmeter/energy_j"] = sum(float(v) for d, v in marks[-1].get("energy_j", {}).items() if d != "psys")
        return out

    @staticmethod
    def _log(pl_module: Any, fig: Dict[str, float], on_step: bool = True) -> None:
        if fig:
            pl_module.log_dict(fig, on_step=on_step, on_epoch=not on_step, prog_bar=False, logger=True)
