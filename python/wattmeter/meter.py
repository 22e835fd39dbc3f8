"""Meter: measure a block of Python, a function, or anything between start() and stop()."""

from __future__ import annotations

import errno
import functools
import inspect
import itertools
import json
import math
import numbers
import os
import socket
import stat
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, TypeVar

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


class _Control:
    """The client of `wattmeter run`'s control socket (WATTMETER_CONTROL;
    protocol: include/wattmeter_client.h): windows of a Python program run
    under `wattmeter run` go to that run's meter and recording."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._n = itertools.count(1)
        self._warned = False

    def _send(self, msg: Dict[str, Any]) -> None:
        msg["v"] = 1
        msg["t_ns"] = time.monotonic_ns()  # CLOCK_MONOTONIC, as the meter's
        data = json.dumps(msg, default=str, separators=(",", ":")).encode()
        try:
            self.sock.sendto(data, socket.MSG_DONTWAIT, self.path)
        except OSError as e:
            if not self._warned:  # the run goes on; its windows are lost, once said
                self._warned = True
                warnings.warn(f"wattmeter: cannot reach the meter of 'wattmeter run' at {self.path}: "
                              f"{e.strerror or e}; windows are not recorded", RuntimeWarning, stacklevel=4)

    def begin(self, name: str, attrs: Dict[str, Any]) -> str:
        key = f"{os.getpid()}.{next(self._n)}"
        self._send({"op": "begin", "key": key, "name": name, "attrs": attrs})
        return key

    def end(self, key: str, counts: Dict[str, float]) -> None:
        self._send({"op": "end", "key": key, "counts": counts})

    def mark(self, name: str, attrs: Dict[str, Any]) -> None:
        self._send({"op": "mark", "name": name, "attrs": attrs})

    def request_begin(self, attrs: Dict[str, Any]) -> str:
        key = f"{os.getpid()}.r{next(self._n)}"
        self._send({"op": "request_begin", "key": key, "attrs": attrs})
        return key

    def request_tokens(self, key: str, n: int) -> None:
        self._send({"op": "request_tokens", "key": key, "n": n})

    def request_end(self, key: str, result: Dict[str, Any]) -> None:
        self._send({"op": "request_end", "key": key, "result": result})

    def close(self) -> None:
        self.sock.close()


class Window:
    """A window of work on a running Meter: its energy is the counter
    difference at its own two edges (docs/architecture.md "Windows"), read by
    the meter's native edge thread, so a 10 ms step is measured as well as a
    one-hour epoch. Made by ``Meter.window(name, **attrs)``; use it as a
    context manager (``with``/``async with``) or a decorator (sync and async
    functions: a window per call). ``count(tokens=..., samples=...)`` adds
    counts that give the window's joules per count. Results are in the
    recording's windows.jsonl: ``Results.windows()`` after the stop.

    Thread-safe: windows may overlap and nest, from any thread. In a forked
    child (a DataLoader worker) opening a window raises OSError(ECHILD): its
    windows belong in the parent.
    """

    def __init__(self, meter: "Meter", name: str, attrs: Dict[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a window needs a name (a non-empty str), e.g. meter.window('step')")
        self.meter = meter
        self.name = name
        self.attrs = dict(attrs)
        self.id: Any = None  # the meter's id (int), or the control key (str) when attached
        self.counts: Dict[str, float] = {}
        self._lock = threading.Lock()

    def _fresh(self) -> "Window":
        return Window(self.meter, self.name, self.attrs)

    def count(self, **counts: float) -> "Window":
        """Adds counts (tokens=512, samples=8 ...): non-negative numbers,
        summed over calls; the window then reports j_per_<count>."""
        for k, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"count {k}={v!r}: give a non-negative number")
            with self._lock:
                self.counts[k] = self.counts.get(k, 0) + v
        return self

    def begin(self) -> "Window":
        if self.id is not None:
            raise RuntimeError(f"window {self.name!r} is open already; use meter.window(...) for another")
        ctl = self.meter._control
        if ctl is not None:  # attached to the meter of `wattmeter run`
            self.id = ctl.begin(self.name, self.attrs)
            return self
        h = self.meter._window_handle()
        try:
            self.id = _native.window_begin(h, self.name, json.dumps(self.attrs, default=str) if self.attrs else None)
        except OSError as e:
            raise _py_oserror(e) from None
        return self

    def end(self) -> None:
        if self.id is None:
            raise RuntimeError(f"window {self.name!r} is not open")
        wid, self.id = self.id, None
        ctl = self.meter._control
        if ctl is not None:
            with self._lock:
                ctl.end(wid, dict(self.counts))
            return
        h = self.meter._handle
        if h is None:
            return  # the meter stopped first: the window was ended there, marked open
        with self._lock:
            counts = json.dumps(self.counts) if self.counts else None
        try:
            _native.window_end(h, wid, counts)
        except OSError as e:
            if e.errno != errno.ESHUTDOWN:
                raise _py_oserror(e) from None

    def __enter__(self) -> "Window":
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.end()

    async def __aenter__(self) -> "Window":
        return self.begin()

    async def __aexit__(self, *exc: object) -> None:
        self.end()

    def __call__(self, func: F) -> F:
        """A window around every call (awaited, for a coroutine function)."""
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await func(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = f"open id={self.id}" if self.id is not None else "closed"
        return f"<wattmeter.Window {self.name!r} {state} attrs={self.attrs!r} counts={self.counts!r}>"


# Meters running in this process, the latest last: the integrations
# (wattmeter.integrations.openai/ollama) record requests on the latest.
_running: List["Meter"] = []
_running_lock = threading.Lock()
_env_control: Optional[_Control] = None


def _active_sink() -> Any:
    """Where a request goes: the latest running Meter of this process, else
    the meter of `wattmeter run` (WATTMETER_CONTROL), else None."""
    global _env_control
    with _running_lock:
        if _running:
            return _running[-1]
        path = os.environ.get("WATTMETER_CONTROL")
        if not path:
            return None
        if _env_control is None or _env_control.path != path:
            _env_control = _Control(path)
        return _env_control


class Request:
    """A request to a server (a chat completion, an embedding) on a running
    Meter: its energy is the server's energy split among the requests in
    flight, by the tokens each produced, else by time (docs/architecture.md
    "Requests"), so that requests plus the server's idle energy equal the
    server's energy. The server is the Meter's measured set (include_name=
    "ollama" adds a server outside this process), else the machine.

    Made by ``Meter.request(path=, model=, stream=, **attrs)``, begun at
    once. ``tokens(n)`` reports n completion tokens produced since the last
    call (a stream chunk: the first is the first token); ``end(...)`` gives
    the usage the server reported (``prompt_tokens``, ``completion_tokens``
    replace the counted ones), the HTTP ``status``, ``tokens_source``
    (``usage``, ``counted``, ``none``) and ``outcome`` (``ok``,
    ``client_disconnected``, ``upstream_error``, ``timeout``, ``error``).
    As a context manager (``with meter.request(...) as r:``) it ends at the
    block's end, with ``outcome="error"`` when the block raised. Results are
    in requests.jsonl: ``Results.requests()`` after the stop. Thread-safe.
    """

    def __init__(self, sink: Any, attrs: Dict[str, Any]) -> None:
        self._sink = sink
        self.attrs = dict(attrs)
        self.id: Any = None
        self.counted = 0
        self._lock = threading.Lock()
        if isinstance(sink, _Control):
            self.id = sink.request_begin(self.attrs)
        else:
            try:
                self.id = _native.request_begin(sink._request_handle(), _dumps(self.attrs))
            except OSError as e:
                raise _py_oserror(e) from None

    def tokens(self, n: int = 1) -> None:
        """n (>= 0) completion tokens produced since the last call."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"tokens({n!r}): give a non-negative int")
        with self._lock:
            if self.id is None:
                raise RuntimeError("this request has ended")
            self.counted += n
            if isinstance(self._sink, _Control):
                self._sink.request_tokens(self.id, n)
                return
            h = self._sink._handle
            if h is None:
                return  # the meter stopped first: the request was ended there, open
            try:
                _native.request_tokens(h, self.id, n)
            except OSError as e:
                if e.errno != errno.ESHUTDOWN:
                    raise _py_oserror(e) from None

    def end(self, prompt_tokens: Optional[float] = None, completion_tokens: Optional[float] = None,
            status: Optional[int] = None, tokens_source: Optional[str] = None,
            outcome: Optional[str] = None) -> None:
        """Ends the request (once; a second call raises RuntimeError)."""
        result: Dict[str, Any] = {}
        for k, v in (("prompt_tokens", prompt_tokens), ("completion_tokens", completion_tokens)):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{k}={v!r}: give a non-negative number or None")
            result[k] = v
        if status is not None:
            if isinstance(status, bool) or not isinstance(status, int):
                raise ValueError(f"status={status!r}: give an int (the HTTP status) or None")
            result["status"] = status
        if tokens_source is None:
            tokens_source = "usage" if result.keys() & {"prompt_tokens", "completion_tokens"} else \
                "counted" if self.counted else "none"
        result["tokens_source"] = str(tokens_source)
        if outcome is not None:
            result["outcome"] = str(outcome)
        with self._lock:
            if self.id is None:
                raise RuntimeError("this request has ended already")
            rid, self.id = self.id, None
            if isinstance(self._sink, _Control):
                self._sink.request_end(rid, result)
                return
            h = self._sink._handle
            if h is None:
                return
            try:
                _native.request_end(h, rid, json.dumps(result))
            except OSError as e:
                if e.errno != errno.ESHUTDOWN:
                    raise _py_oserror(e) from None

    @property
    def open(self) -> bool:
        return self.id is not None

    def __enter__(self) -> "Request":
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if self.id is not None:
            self.end(outcome="error" if exc_type is not None else None)

    async def __aenter__(self) -> "Request":
        return self

    async def __aexit__(self, exc_type: Any, *exc: object) -> None:
        self.__exit__(exc_type)

    def __repr__(self) -> str:
        state = f"open id={self.id}" if self.id is not None else "ended"
        return f"<wattmeter.Request {state} attrs={self.attrs!r} counted={self.counted}>"


def _dumps(attrs: Dict[str, Any]) -> Optional[str]:
    return json.dumps(attrs, default=str) if attrs else None


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
        attach: under `wattmeter run` (WATTMETER_CONTROL set), None (the
            default) or True attaches to that run's meter instead of starting
            a second one: windows and marks go to its recording, nothing is
            measured twice, ``stop()`` returns None; False starts a meter of
            its own anyway.
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
        attach: Optional[bool] = None,
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
        self.attach = attach
        self._control: Optional[_Control] = None

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
        if self._handle is not None or self._control is not None:
            raise RuntimeError("this Meter is already running; stop() it first")
        ctl = os.environ.get("WATTMETER_CONTROL")
        if ctl and self.attach is not False:
            # Under `wattmeter run`: its meter measures this process already;
            # a second one would measure twice. Windows go to it instead.
            self._control = _Control(ctl)
            self._results = None
            self._owner_pid = os.getpid()
            return self
        if self.attach:
            raise RuntimeError("Meter(attach=True) needs WATTMETER_CONTROL: run this under 'wattmeter run'")
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
        with _running_lock:
            _running.append(self)
        return self

    def stop(self) -> Optional[Results]:
        """Stops measuring, completes the recording and returns its Results.

        In a process forked from the one that started the meter (a worker
        leaving a ``with`` block it inherited), this does nothing and returns
        None: the recording belongs to the parent."""
        if self._control is not None:
            self._control.close()
            self._control = None
            return None  # the parent `wattmeter run` records; its report holds the windows
        if self._handle is None:
            raise RuntimeError("this Meter is not running; call start() first")
        with _running_lock:
            if self in _running:
                _running.remove(self)
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
        if self._results is None and self.attach is not False and os.environ.get("WATTMETER_CONTROL"):
            raise RuntimeError("this Meter was attached to the meter of 'wattmeter run' (WATTMETER_CONTROL): "
                               "that run records the energy and the windows; read its recording "
                               "('wattmeter report DIR'), or pass Meter(attach=False) for a meter of its own")
        if self._results is None:
            raise RuntimeError("no results yet: the Meter is still running or was never started "
                               "(results exist after stop() or the end of the with block)")
        return self._results

    @property
    def running(self) -> bool:
        return self._handle is not None or self._control is not None

    @property
    def attached(self) -> bool:
        """True while attached to the meter of `wattmeter run` (WATTMETER_CONTROL)."""
        return self._control is not None

    def snapshot(self) -> Dict[str, Any]:
        """Live power (W) and energy (J) per device of a running meter."""
        if self._handle is None:
            raise RuntimeError("this Meter is not running")
        return _native.meter_snapshot(self._handle)

    # -- windows: energy per unit of work ----------------------------------------
    def _window_handle(self) -> Any:
        if self._handle is None:
            raise RuntimeError("this Meter is not running: open windows inside its with block "
                               "(or after start())")
        if self._owner_pid != os.getpid():
            raise OSError(errno.ECHILD, "this Meter belongs to the parent process: a forked child "
                          "(a DataLoader worker) cannot open windows on it; open them in the parent")
        if not self.recorded:
            raise OSError(errno.ENOTSUP, "windows are recorded in windows.jsonl and this Meter is "
                          f"unrecorded ({self._why_unrecorded}); give it a writable output_dir")
        return self._handle

    def window(self, name: str, **attrs: Any) -> Window:
        """A window named ``name`` with attributes (epoch=3, phase="train"
        ...): ``with meter.window("step", step=i) as w: ...; w.count(samples=n)``,
        or ``@meter.window("eval")`` on a function (sync or async)."""
        return Window(self, name, attrs)

    def mark(self, name: str, **attrs: Any) -> None:
        """An instant event (a checkpoint) with the cumulative energy at it."""
        if not isinstance(name, str) or not name:
            raise ValueError("a mark needs a name (a non-empty str)")
        if self._control is not None:
            self._control.mark(name, attrs)
            return
        try:
            _native.mark(self._window_handle(), name, json.dumps(attrs, default=str) if attrs else None)
        except OSError as e:
            raise _py_oserror(e) from None

    def flush_windows(self) -> None:
        """Waits until every window edge given so far is read and written (attached:
        nothing to wait for, the datagrams are sent)."""
        if self._control is not None:
            return
        try:
            _native.windows_flush(self._window_handle())
        except OSError as e:
            raise _py_oserror(e) from None

    # -- requests: energy per served request ----------------------------------
    def _request_handle(self) -> Any:
        if self._handle is None:
            raise RuntimeError("this Meter is not running: record requests inside its with block "
                               "(or after start())")
        if self._owner_pid != os.getpid():
            raise OSError(errno.ECHILD, "this Meter belongs to the parent process: a forked child "
                          "cannot record requests on it")
        if not self.recorded:
            raise OSError(errno.ENOTSUP, "requests are recorded in requests.jsonl and this Meter is "
                          f"unrecorded ({self._why_unrecorded}); give it a writable output_dir")
        return self._handle

    def request(self, path: Optional[str] = None, model: Optional[str] = None, stream: Optional[bool] = None,
                **attrs: Any) -> Request:
        """A request begins now (see ``Request``): ``r = meter.request(path="/v1/chat/completions",
        model="llama3", stream=True)``, then ``r.tokens(1)`` per chunk and
        ``r.end(prompt_tokens=12, completion_tokens=40)``; or ``with
        meter.request(...) as r:``."""
        a: Dict[str, Any] = {}
        if path is not None:
            a["path"] = str(path)
        if model is not None:
            a["model"] = str(model)
        if stream is not None:
            a["stream"] = bool(stream)
        a.update(attrs)
        if self._control is not None:
            return Request(self._control, a)
        return Request(self, a)

    def flush_requests(self, timeout: float = 30.0) -> None:
        """Waits until every request ended so far is final and written to
        requests.jsonl (an interval is final one sampling period, or process
        period for a measured set, after it ends); TimeoutError after
        ``timeout`` s. Attached: nothing to wait for."""
        if self._control is not None:
            return
        try:
            _native.requests_flush(self._request_handle(), float(timeout))
        except OSError as e:
            if e.errno == errno.ETIMEDOUT:
                raise TimeoutError(errno.ETIMEDOUT, str(e.strerror or e)) from None
            raise _py_oserror(e) from None

    # -- context manager and decorator ----------------------------------------
    def _start_or_warn(self) -> bool:
        """start(), but a meter that cannot start only warns: the user's code
        runs anyway. A call while this meter already runs (a recursive or
        concurrent call of a decorated function) is measured by the running
        measurement and starts nothing."""
        if self._handle is not None or self._control is not None:
            return False
        try:
            self.start()
            return True
        except OSError as e:
            warnings.warn(f"wattmeter: NOT MEASURING: {e.strerror or e}; the code runs unmeasured",
                          RuntimeWarning, stacklevel=3)
            return False

    def __enter__(self) -> "Meter":
        if self._handle is not None or self._control is not None:
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
        if self._control is not None and self._started_by_with:
            self._started_by_with = False
            self.stop()
            return
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
                    if started and self.running:
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
                    if started and self.running:
                        self._stop_or_warn()

            return agwrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def gwrapper(*args: Any, **kwargs: Any) -> Any:
                started = self._start_or_warn()
                try:
                    return (yield from func(*args, **kwargs))
                finally:
                    if started and self.running:
                        self._stop_or_warn()

            return gwrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = self._start_or_warn()
            try:
                return func(*args, **kwargs)
            finally:
                if started and self.running:
                    self._stop_or_warn()

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wattmeter.Meter {state} dir={self.dir!r} period={self.period}s>"
