"""Meter: measure a block of Python, a function, or anything between start() and stop()."""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import _native
from .results import Results, load

F = TypeVar("F", bound=Callable[..., Any])


def _default_output_dir() -> str:
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    base = os.path.join("wattmeter-runs", stamp)
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


class Meter:
    """Measures the energy spent while it runs, and how much of it belongs to
    this process and its children (data-loader workers, subprocesses).

    Use it as a context manager, a decorator, or with start()/stop()::

        with Meter("runs/epoch1") as m:
            train()
        print(m.results.energy_j)

        @Meter()            # a new recording folder for every call
        def step(): ...

    The sampling runs on a native thread that never takes the GIL. A process
    forked from this one (a PyTorch DataLoader worker) is measured as a child
    and never writes to this recording.

    Args:
        output_dir: recording folder, created; must not hold a recording.
            Default: a new timestamped folder under ./wattmeter-runs/.
        period: counter sampling period in seconds.
        proc_period: process scan period in seconds.
        mem_period: PSS/USS read period in seconds, 0 turns it off.
        pids: more processes (and their trees) to measure.
        include_self: measure this process and its children (default True).
        sysfs_root, procfs_root: read /sys and /proc from elsewhere (containers, tests).
        model_min_w, model_max_w: CPU model watts per CPU, idle and busy, used
            only where RAPL counters cannot be read.
        force_model: model the CPU even where counters exist.
        nvml_lib: NVIDIA GPUs: the libnvidia-ml to load (default:
            $WATTMETER_NVML_LIB, then libnvidia-ml.so.1).
        no_gpu: do not look for NVIDIA GPUs.
        gpu_exclusive: bill the run's GPUs (CUDA_VISIBLE_DEVICES) whole to the
            measured processes (when NVML reports pids this /proc cannot see).
    """

    def __init__(
        self,
        output_dir: Optional[str] = None,
        period: float = _native.DEFAULT_PERIOD_S,
        *,
        proc_period: float = _native.DEFAULT_PROC_PERIOD_S,
        mem_period: float = _native.DEFAULT_MEM_PERIOD_S,
        pids: Iterable[int] = (),
        include_self: bool = True,
        sysfs_root: Optional[str] = None,
        procfs_root: Optional[str] = None,
        model_min_w: float = 0.74,
        model_max_w: float = 3.5,
        force_model: bool = False,
        nvml_lib: Optional[str] = None,
        no_gpu: bool = False,
        gpu_exclusive: bool = False,
    ) -> None:
        self.output_dir = output_dir
        self.period = float(period)
        self.proc_period = float(proc_period)
        self.mem_period = float(mem_period)
        self.pids = [int(p) for p in pids]
        self.include_self = include_self
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root
        self.model_min_w = float(model_min_w)
        self.model_max_w = float(model_max_w)
        self.force_model = force_model
        self.nvml_lib = nvml_lib
        self.no_gpu = no_gpu
        self.gpu_exclusive = gpu_exclusive
        self.results: Optional[Results] = None
        self.dir: Optional[str] = None
        self._handle: Any = None
        self._calls = 0
        self._owner_pid = 0

    # -- start / stop -------------------------------------------------------
    def start(self) -> "Meter":
        """Starts measuring. Raises OSError (with the fix in its message) if the
        recording folder cannot be created or already holds a recording."""
        if self._handle is not None:
            raise RuntimeError("this Meter is already running; stop() it first")
        out = self.output_dir or _default_output_dir()
        if self._calls and self.output_dir:
            out = f"{self.output_dir}-{self._calls + 1}"
        self._calls += 1
        self._handle = _native.meter_start(
            out,
            period_s=self.period,
            proc_period_s=max(self.proc_period, self.period),
            mem_period_s=self.mem_period,
            pids=self.pids,
            measure_self=self.include_self,
            sysfs_root=self.sysfs_root,
            procfs_root=self.procfs_root,
            model_min_w=self.model_min_w,
            model_max_w=self.model_max_w,
            force_model=self.force_model,
            nvml_lib=self.nvml_lib,
            no_gpu=self.no_gpu,
            gpu_exclusive=self.gpu_exclusive,
            command=list(sys.argv) or None,
        )
        self.dir = out
        self.results = None
        self._owner_pid = os.getpid()
        return self

    def stop(self) -> Optional[Results]:
        """Stops measuring, completes the recording and returns its Results.

        In a process forked from the one that started the meter (a worker
        leaving a ``with`` block it inherited), this does nothing and returns
        None: the recording belongs to the parent."""
        if self._handle is None:
            raise RuntimeError("this Meter is not running; call start() first")
        handle, self._handle = self._handle, None
        if self._owner_pid != os.getpid():
            return None
        _native.meter_stop(handle)
        assert self.dir is not None
        self.results = load(self.dir)
        return self.results

    @property
    def running(self) -> bool:
        return self._handle is not None

    def snapshot(self) -> dict:
        """Live power (W) and energy (J) per device of a running meter."""
        if self._handle is None:
            raise RuntimeError("this Meter is not running")
        return _native.meter_snapshot(self._handle)

    # -- context manager and decorator ----------------------------------------
    def __enter__(self) -> "Meter":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wattmeter.Meter {state} dir={self.dir!r} period={self.period}s>"
