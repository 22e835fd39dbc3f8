"""Hugging Face ``transformers.Trainer`` callback: a window per training step,
epoch and evaluation, and their energy in the Trainer's logs.

Five lines::

    from wattmeter.integrations.hf import WattmeterCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    WattmeterCallback.install(trainer)      # or Trainer(callbacks=[WattmeterCallback()])
    trainer.train()
    print(trainer.state.log_history[-2]["wattmeter/j_per_step"])

At every log the callback adds to the logs (and so to ``state.log_history``
and to every reporter after it: ``install`` puts it first, so W&B, MLflow,
TensorBoard ... get them too):

- ``wattmeter/energy_j``: the run's energy so far (cpu + dram + gpu, J);
- ``wattmeter/j_per_step``, ``wattmeter/j_per_sample``: over the steps since
  the last log, from each step's own window (samples per step =
  per-device batch × gradient accumulation × world size);
- ``wattmeter/j_per_token`` when ``args.include_num_input_tokens_seen`` is set;
- after an evaluation, ``wattmeter/eval_energy_j``.

The recording goes to ``output_dir`` (default: ``<args.output_dir>/wattmeter``);
``sysfs_root`` defaults to $WATTMETER_SYSFS_ROOT (tests, containers), and the
other Meter options pass through. Under ``wattmeter run`` the Meter attaches to
the run's meter (windows recorded there; the energy figures in the logs are
then absent).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Dict, Optional

from ..meter import Meter, Window
from ._tail import WindowsTail

_transformers = importlib.import_module("transformers")
_Base: Any = _transformers.TrainerCallback


class WattmeterCallback(_Base):  # type: ignore[misc]
    """Energy per step, per sample, per token and per epoch for ``Trainer``."""

    def __init__(self, output_dir: Optional[str] = None, **meter_options: Any) -> None:
        self.output_dir = output_dir
        meter_options.setdefault("sysfs_root", os.environ.get("WATTMETER_SYSFS_ROOT") or None)
        self.meter_options = meter_options
        self.meter: Optional[Meter] = None
        self._step: Optional[Window] = None
        self._epoch: Optional[Window] = None
        self._eval: Optional[Window] = None
        self._tail: Optional[WindowsTail] = None
        self._tokens_seen = 0
        self._pending: Dict[str, float] = {}

    @classmethod
    def install(cls, trainer: Any, **kw: Any) -> "WattmeterCallback":
        """Adds a callback first among the trainer's, so that every reporter
        logs its figures."""
        cb = cls(**kw)
        trainer.callback_handler.callbacks.insert(0, cb)
        return cb

    # -- lifecycle -----------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.meter is not None or not state.is_world_process_zero:
            return
        out = self.output_dir or os.path.join(args.output_dir, "wattmeter")
        if os.path.exists(os.path.join(out, "samples.jsonl")):
            n = 2
            while os.path.exists(f"{out}-{n}"):
                n += 1
            out = f"{out}-{n}"
        self.meter = Meter(out, **self.meter_options).start()
        self._tail = WindowsTail(self.meter.dir) if self.meter.dir else None

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        for w in (self._step, self._epoch, self._eval):
            if w is not None and w.id is not None:
                w.end()
        self._step = self._epoch = self._eval = None
        if self.meter is not None and self.meter.running:
            self.meter.stop()

    # -- windows -------------------------------------------------------------------
    def _samples_per_step(self, args: Any) -> int:
        world = int(getattr(args, "world_size", 1) or 1)
        return int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps) * world

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.meter is not None:
            self._epoch = self.meter.window("epoch", epoch=int(state.epoch or 0)).begin()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._epoch is not None:
            self._epoch.end()
            self._epoch = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.meter is not None:
            self._step = self.meter.window("step", step=int(state.global_step) + 1,
                                           epoch=float(state.epoch or 0.0)).begin()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        w, self._step = self._step, None
        if w is None:
            return
        w.count(samples=self._samples_per_step(args))
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        if seen > self._tokens_seen:
            w.count(tokens=seen - self._tokens_seen)
            self._tokens_seen = seen
        w.end()

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.meter is not None and self._eval is None:
            self._eval = self.meter.window("eval", step=int(state.global_step)).begin()

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._eval is not None:
            self._eval.end()
            self._eval = None

    # -- logs ----------------------------------------------------------------------
    def _figures(self, state: Any) -> Dict[str, float]:
        m = self.meter
        if m is None or self._tail is None or not m.running or m.attached:
            return {}
        m.mark("log", step=int(state.global_step))  # the cumulative energy at this log, read at its edge
        m.flush_windows()
        out: Dict[str, float] = {}
        new = self._tail.read()
        steps = [w for w in new if w.get("event") == "end" and w.get("name") in ("step", "eval")]
        train = [w for w in steps if w["name"] == "step"]
        if train:
            e = sum(float(w.get("total_j", 0.0)) for w in train)
            out["wattmeter/j_per_step"] = e / len(train)
            samples = sum(float(w.get("counts", {}).get("samples", 0)) for w in train)
            tokens = sum(float(w.get("counts", {}).get("tokens", 0)) for w in train)
            if samples > 0:
                out["wattmeter/j_per_sample"] = e / samples
            if tokens > 0:
                out["wattmeter/j_per_token"] = e / tokens
        evals = [w for w in steps if w["name"] == "eval"]
        if evals:
            out["wattmeter/eval_energy_j"] = sum(float(w.get("total_j", 0.0)) for w in evals)
        marks = [w for w in new if w.get("event") == "mark" and w.get("name") == "log"]
        if marks:
            out["wattmeter/energy_j"] = sum(float(v) for dev, v in marks[-1].get("energy_j", {}).items()
                                            if dev != "psys")
        return out

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None,
               **kw: Any) -> None:
        fig = self._figures(state)
        if not fig or logs is None:
            return
        logs.update(fig)
        # the Trainer appended its copy of these logs before calling us
        if state.log_history and all(state.log_history[-1].get(k) == v for k, v in logs.items()
                                     if k in state.log_history[-1] and not k.startswith("wattmeter/")):
            state.log_history[-1].update(fig)
