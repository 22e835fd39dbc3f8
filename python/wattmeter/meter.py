"""Meter: measure a block of Python, a function, or anything between start() and stop()."""

from __future__ import annotations

import errno
import functools
import inspect
import itertools
import math
import numbers
import os
import stat
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterable, Optional, TypeVar

from . import _native
from .results import Results, load

F = TypeVar("F", bound=Callable[..., Any])

# Valid ranges (the core's, include/wattmeter.h: WM_MIN_PERIOD_S, WM_MAX_PERIOD_S).
MIN_PERIOD_S = 0.0005
MAX_PERIOD_S = 3600.0
MAX_MEM_PERIOD_S = 3600.0
MAX_MODEL_W = 1000.0

_counter = itertools.count(1)

# The core's messages name the command-line options; in Python the same fix is
# a keyword argument.
_PY_ADVICE = (
    ("choose another with -o DIR", "choose another with Meter(output_dir=...)"),
    ("choose a new folder with -o DIR", "choose a new folder with Meter(output_dir=...)"),
    ("choose a writable folder with -o DIR", "choose a writable folder with Meter(output_dir=...)"),
    ("give one with -o DIR", "give one with Meter(output_dir=...)"),
    ("with -o DIR", "with Meter(output_dir=...)"),
    ("-o DIR", "Meter(output_dir=...)"),
    ("is --procfs-root right?", "is procfs_root= right?"),
    ("--procfs-root", "procfs_root="),
    ("--sysfs-root", "sysfs_root="),
    ("--model-min-w/--model-max-w", "model_min_w=/model_max_w="),
    ("--period", "period="),
    ("--include-name", "include_name="),
    ("--include-cgroup", "include_cgroup="),
    ("--include-unit", "include_unit="),
    ("--include-pid", "include_pids="),
    ("include pid", "include_pids= pid"),
    ("--pid", "pids="),
    ("`wattmeter sensors`", "wattmeter.sensors()"),
    ("'wattmeter sensors'", "wattmeter.sensors()"),
)


def _python_advice(msg: str) -> str:
    for cli, py in _PY_ADVICE:
        msg = msg.replace(cli, py)
    return msg


def _py_oserror(e: OSError) -> OSError:
    """The same OSError (same class and errno) with Python advice."""
    msg = _python_advice(str(e.strerror or e))
    new = type(e)(e.errno, msg) if e.errno is not None else type(e)(msg)
    return new


def _default_output_dir() -> str:
    """A new folder ./wattmeter-runs/<UTC time>-<pid>[-<n>], created here with
    os.mkdir, which fails rather than share a folder: meters started in the
    same second, in any number of processes (or threads), each get their own.
    A ./wattmeter-runs that is a symlink is followed only by the rule of
    docs/privileges.md, as the C recorder does (not one another user planted
    in a sticky world-writable folder such as /tmp)."""
    try:
        st = os.lstat("wattmeter-runs")
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        cwd = os.stat(".")
        sticky_shared = cwd.st_mode & stat.S_ISVTX and cwd.st_mode & stat.S_IWOTH
        if sticky_shared and st.st_uid not in (os.geteuid(), cwd.st_uid):
            raise PermissionError(errno.EPERM, f"./wattmeter-runs is a symbolic link owned by uid {st.st_uid} "
                                  "in a sticky world-writable folder: not followed, by the rule of the kernel's "
                                  "fs.protected_symlinks (docs/privileges.md); remove it or choose a folder")
    os.makedirs("wattmeter-runs", exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    base = os.path.join("wattmeter-runs", f"{stamp}-{os.getpid()}")
    for n in itertools.chain([0], _counter):
        path = base if n == 0 else f"{base}-{n + 1}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _number(name: str, value: Any, lo: float, hi: float, zero_ok: bool = False, unit: str = "s") -> float:
    """A float in [lo, hi] (or 0 if zero_ok), else ValueError naming the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of {'seconds' if unit == 's' else 'watts'}, "
                        f"not {type(value).__name__} {value!r}")
    v = float(value)
    if (zero_ok and v == 0) or (math.isfinite(v) and lo <= v <= hi):
        return v
    rng = f"0 (off) or {lo:g} to {hi:g} {unit}" if zero_ok else f"{lo:g} to {hi:g} {unit}"
    raise ValueError(f"{name}={value!r} is out of range: give {rng} (e.g. {name}={'0.1' if unit == 's' else '3.5'})")


class Meter:
    """Measures the energy spent while it runs, and how much of it belongs to
    this process and its children (data-loader workers, subprocesses).

    Use it as a context manager, a decorator, or with start()/stop()::

        with Meter("runs/epoch1") as m:
            train()
        print(m.results.energy_j)

        @Meter()            # a new recording folder for every call
        def step(): ...

        @Meter()            # async def too: measured while awaited
        async def fetch(): ...

        async with Meter("runs/serve"):
            await fetch()

    The sampling runs on a native thread that never takes the GIL. A process
    forked from this one (a PyTorch DataLoader worker) is measured as a child
    and never writes to this recording.

    Measuring never stops your code: if the recording cannot be made (the
    folder cannot be created or already holds a recording), the block runs
    measured but unrecorded, with a warning, and ``results`` holds the totals
    (``results.summary["recorded"]`` is False; str(), total(), average()
    and report() work from the totals, what needs the time series says so).
    If the meter cannot start at all, a ``with`` block or decorated function still runs, unmeasured, with a
    warning; only an explicit ``start()`` raises.

    Args:
        output_dir: recording folder, created; must not hold a recording.
            Default: a new folder named by time, process id and a counter
            under ./wattmeter-runs/.
        period: counter sampling period in seconds, 0.0005 to 3600.
        proc_period: process scan period in seconds, 0.0005 to 3600 (raised to
            ``period`` if shorter).
        mem_period: PSS/USS read period in seconds, 0 turns it off, else
            0.0005 to 3600.
        pids: more processes (and their trees) to measure.
        include_self: measure this process and its children (default True).
        sysfs_root, procfs_root: read /sys and /proc from elsewhere (containers, tests).
        model_min_w, model_max_w: CPU model watts per CPU, idle and busy (0 to
            1000, min <= max), used only where RAPL counters cannot be read.
        force_model: model the CPU even where counters exist.
        nvml_lib: NVIDIA GPUs: the libnvidia-ml to load (default:
            $WATTMETER_NVML_LIB, then libnvidia-ml.so.1).
        no_gpu: do not look for NVIDIA GPUs.
        gpu_exclusive: bill the run's GPUs (CUDA_VISIBLE_DEVICES) whole to the
            measured processes (when NVML reports pids this /proc cannot see).
        include_pids: processes outside this one's tree (a server it calls,
            such as ollama) and their descendants, measured for the run and
            shown apart as ``included`` (``Results.processes()``'s column).
        include_name: a POSIX extended regular expression matched on command
            lines: matching processes, those that start later too, are included.
        include_cgroup: a cgroup folder (absolute, or below the cgroup v2
            mount) whose processes are included.
        include_unit: a systemd unit (``ollama.service``) whose processes are
            included.

    Raises:
        ValueError: a value out of its range (at construction, not at start).
        TypeError: a value that is not a number.
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
        include_pids: Iterable[int] = (),
        include_name: Optional[str] = None,
        include_cgroup: Optional[str] = None,
        include_unit: Optional[str] = None,
    ) -> None:
        if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir must be a path (str), not {type(output_dir).__name__}")
        self.output_dir: Optional[str] = os.fspath(output_dir) if output_dir is not None else None
        if self.output_dir == "":
            raise ValueError("output_dir='' is not a folder: give a path, or None for a new folder "
                             "under ./wattmeter-runs/")
        self.period = _number("period", period, MIN_PERIOD_S, MAX_PERIOD_S)
        self.proc_period = _number("proc_period", proc_period, MIN_PERIOD_S, MAX_PERIOD_S)
        self.mem_period = _number("mem_period", mem_period, MIN_PERIOD_S, MAX_MEM_PERIOD_S, zero_ok=True)
        self.pids = []
        for p in pids:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 < p <= 4194304:
                raise ValueError(f"pids: {p!r} is not a process id (an int from 1 to 4194304)")
            self.pids.append(int(p))
        self.include_pids = []
        for p in include_pids:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 < p <= 4194304:
                raise ValueError(f"include_pids: {p!r} is not a process id (an int from 1 to 4194304)")
            self.include_pids.append(int(p))
        for name, v in (("include_name", include_name), ("include_cgroup", include_cgroup),
                        ("include_unit", include_unit)):
            if v is not None and (not isinstance(v, str) or not v):
                raise ValueError(f"{name}={v!r}: give a non-empty string or None")
        self.include_name = include_name
        self.include_cgroup = include_cgroup
        self.include_unit = include_unit
        self.include_self = include_self
        self.sysfs_root = sysfs_root
        self.procfs_root = procfs_root
        self.model_min_w = _number("model_min_w", model_min_w, 0.0, MAX_MODEL_W, unit="W")
        self.model_max_w = _number("model_max_w", model_max_w, 0.0, MAX_MODEL_W, unit="W")
        if self.model_min_w > self.model_max_w:
            raise ValueError(f"model_min_w={model_min_w!r} is above model_max_w={model_max_w!r}: "
                             "idle watts must not exceed busy watts")
        self.force_model = force_model
        self.nvml_lib = nvml_lib
        self.no_gpu = no_gpu
        self.gpu_exclusive = gpu_exclusive
        self._results: Optional[Results] = None
        self.dir: Optional[str] = None
        self.recorded = False
        self._why_unrecorded = ""
        self._handle: Any = None
        self._calls = 0
        self._owner_pid = 0
        self._started_by_with = False

    # -- start / stop -------------------------------------------------------
    def _start_native(self, out: Optional[str]) -> Any:
        return _native.meter_start(
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
            include_pids=self.include_pids,
            include_name=self.include_name,
            include_cgroup=self.include_cgroup,
            include_unit=self.include_unit,
            command=list(sys.argv) or None,
        )

    def start(self) -> "Meter":
        """Starts measuring. If the recording cannot be made, measures
        unrecorded with a warning. Raises OSError (with the fix in its message)
        only if the meter cannot start at all (a wrong procfs_root, say)."""
        if self._handle is not None:
            raise RuntimeError("this Meter is already running; stop() it first")
        self._calls += 1
        why = ""
        out: Optional[str] = None
        try:
            if self.output_dir is None:
                out = _default_output_dir()
            elif self._calls > 1:
                out = f"{self.output_dir}-{self._calls}"
            else:
                out = self.output_dir
        except OSError as e:
            why = f"cannot create a folder under ./wattmeter-runs: {e.strerror or e} " \
                  "(give one with Meter(output_dir=...))"
        handle: Any = None
        if out is not None:
            try:
                handle = self._start_native(out)
            except OSError as e:
                first = _py_oserror(e)
                why = str(first.strerror or first)
                if self.output_dir is None:
                    try:  # the folder made for it, if still empty
                        os.rmdir(out)
                    except OSError:
                        pass
                try:  # again without a recording: then the recording was the problem
                    handle = self._start_native(None)
                except (OSError, TypeError):
                    raise first from None
        else:
            try:
                handle = self._start_native(None)
            except OSError as e:
                raise _py_oserror(e) from None
        if why:
            warnings.warn(f"wattmeter: NOT RECORDING: {why}; measuring UNRECORDED "
                          "(results will hold the totals only)", RuntimeWarning, stacklevel=3)
        self._handle = handle
        self.recorded = not why
        self._why_unrecorded = why
        self.dir = out if not why else None
        self._results = None
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
        try:
            _native.meter_stop(handle)
        except OSError as e:
            raise _py_oserror(e) from None
        # After the stop, which takes the final sample (as a recording's
        # last line): taken before it, an unrecorded measurement lost up to
        # a period at its end, all of one shorter than a period.
        last = _native.meter_snapshot(handle) if not self.recorded else None
        if self.recorded:
            assert self.dir is not None
            try:
                self._results = load(self.dir)
            except OSError as e:
                raise _py_oserror(e) from None
        else:
            self._results = Results("", self._unrecorded_summary(last or {}))
        return self._results

    def _unrecorded_summary(self, snap: Dict[str, Any]) -> Dict[str, Any]:
        """The totals of an unrecorded run, from the meter's snapshot after
        the stop's final sample: the same figures a recording's last line
        holds."""
        energy: Dict[str, float] = {}
        method: Dict[str, str] = {}
        for name, d in dict(snap.get("devices", {})).items():
            energy[name] = float(d.get("energy_j", 0.0))
            method[name] = str(d.get("method", "measured"))
            if name in ("cpu", "dram"):
                energy[f"{name}_attributed"] = float(d.get("attributed_j", 0.0))
                method[f"{name}_attributed"] = method[name]
        return {
            "recorded": False,
            "recording": None,
            "why_not_recorded": self._why_unrecorded,
            "command": list(sys.argv),
            "duration_s": float(snap.get("elapsed_s", 0.0)),
            "energy_j": energy,
            "method": method,
            "complete": True,
        }

    @property
    def results(self) -> Results:
        """The Results of the last completed measurement. Raises RuntimeError
        if there is none yet (still running, or never started)."""
        if self._results is None:
            raise RuntimeError("no results yet: the Meter is still running or was never started "
                               "(results exist after stop() or the end of the with block)")
        return self._results

    @property
    def running(self) -> bool:
        return self._handle is not None

    def snapshot(self) -> Dict[str, Any]:
        """Live power (W) and energy (J) per device of a running meter."""
        if self._handle is None:
            raise RuntimeError("this Meter is not running")
        return _native.meter_snapshot(self._handle)

    # -- context manager and decorator ----------------------------------------
    def _start_or_warn(self) -> bool:
        """start(), but a meter that cannot start only warns: the user's code
        runs anyway. A call while this meter already runs (a recursive or
        concurrent call of a decorated function) is measured by the running
        measurement and starts nothing."""
        if self._handle is not None:
            return False
        try:
            self.start()
            return True
        except OSError as e:
            warnings.warn(f"wattmeter: NOT MEASURING: {e.strerror or e}; the code runs unmeasured",
                          RuntimeWarning, stacklevel=3)
            return False

    def __enter__(self) -> "Meter":
        if self._handle is not None:
            raise RuntimeError("this Meter is already running; use a new Meter for a nested block")
        self._started_by_with = self._start_or_warn()
        return self

    def _stop_or_warn(self) -> None:
        """stop(), but a recording that cannot be completed (a full disk)
        only warns: the user's code has run, its result must not be lost."""
        try:
            self.stop()
        except OSError as e:
            warnings.warn(f"wattmeter: the recording {self.dir} is incomplete: {e.strerror or e}",
                          RuntimeWarning, stacklevel=3)

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None and self._started_by_with:
            self._started_by_with = False
            self._stop_or_warn()

    # ``async with Meter(...)``: the same as ``with``. Starting and stopping
    # take a few milliseconds (the baseline and the final sample, on the
    # native thread) and are done in place rather than in an executor, so the
    # measurement's edges are where the block's are.
    async def __aenter__(self) -> "Meter":
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __call__(self, func: F) -> F:
        """Decorates a function so that every call is measured. A coroutine
        function is measured while it is awaited (not when the coroutine is
        created); a generator or async generator function from its first
        step to its end (exhausted, closed or raising)."""
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                started = self._start_or_warn()
                try:
                    return await func(*args, **kwargs)
                finally:
                    if started and self._handle is not None:
                        self._stop_or_warn()

            return awrapper  # type: ignore[return-value]

        if inspect.isasyncgenfunction(func):
            @functools.wraps(func)
            async def agwrapper(*args: Any, **kwargs: Any) -> Any:
                started = self._start_or_warn()
                try:
                    gen = func(*args, **kwargs)
                    try:
                        item = await gen.__anext__()
                        while True:
                            try:
                                sent = yield item
                            except GeneratorExit:
                                raise
                            except BaseException as e:  # athrow() from the caller: pass it on
                                item = await gen.athrow(e)
                            else:
                                item = await gen.asend(sent)
                    except StopAsyncIteration:
                        return
                    finally:
                        await gen.aclose()
                finally:
                    if started and self._handle is not None:
                        self._stop_or_warn()

            return agwrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def gwrapper(*args: Any, **kwargs: Any) -> Any:
                started = self._start_or_warn()
                try:
                    return (yield from func(*args, **kwargs))
                finally:
                    if started and self._handle is not None:
                        self._stop_or_warn()

            return gwrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = self._start_or_warn()
            try:
                return func(*args, **kwargs)
            finally:
                if started and self._handle is not None:
                    self._stop_or_warn()

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wattmeter.Meter {state} dir={self.dir!r} period={self.period}s>"
