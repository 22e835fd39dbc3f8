"""wattmeter: energy of CPU packages, DRAM and processes, from hardware counters.

The measuring is done by a native C core (libwattmeter); this package is its
Python doorway:

>>> import wattmeter
>>> with wattmeter.Meter("runs/step1") as m:      # doctest: +SKIP
...     train_one_epoch()
>>> m.results.energy_j                              # doctest: +SKIP
{'cpu': 812.4, 'cpu_attributed': 640.1, ...}

Every figure says whether it was ``measured`` (RAPL counters) or ``modeled``
(no counters on this machine; see ``wattmeter.sensors()``).
"""

from __future__ import annotations

import json as _json
import os
from typing import Any, Dict, Optional

from . import _native
from .meter import Meter, Request, Window
from .results import Results, load
from .results import Comparison, compare

__version__: str = _native.version

__all__ = ["Meter", "Results", "load", "sensors", "__version__"]
__all__ += ["compare", "Comparison"]
__all__ += ["Server", "serve"]
__all__ += ["Window", "Request"]
__all__ += ["load_job"]


def load_job(*dirs: "str | os.PathLike[str]") -> Dict[str, Any]:
    """One job's recordings across ranks and nodes, merged, as
    ``wattmeter report --job --json DIR...`` gives it: each DIR a recording
    or a folder holding them. Keys: ``job``, ``energy_j`` (per device, each
    node's devices counted once, by its node meter), ``total_j``, ``nodes``
    (per node: ``energy_j``, ``total_j``, ``node_meters``, ``ranks``),
    ``ranks`` (per rank: ``node``, ``attributed_j``, ``cpu_s``),
    ``start_unix_s``/``end_unix_s``/``duration_s``, ``recordings``,
    ``warnings``."""
    if not dirs:
        raise ValueError("load_job() needs at least one recording folder (or a folder holding them)")
    return dict(_json.loads(_native.report_job_json([os.fspath(d) for d in dirs])))


def sensors(
    sysfs_root: str = "/sys",
    procfs_root: str = "/proc",
    nvml_lib: Optional[str] = None,
    no_gpu: bool = False,
) -> Dict[str, Any]:
    """Every energy source with its state (ok, absent, permission denied,
    modeled) and, for each problem, the fix — as ``wattmeter sensors --json``."""
    d: Dict[str, Any] = _json.loads(_native.sensors(sysfs_root, procfs_root, True, nvml_lib, no_gpu))
    return d


class Server:
    """A running Prometheus exporter (see :func:`serve`). ``url`` is its base
    address ("http://127.0.0.1:5001"); metrics are at ``url + "/metrics"``."""

    def __init__(self, handle: object) -> None:
        self._handle = handle
        self.url, self.port = _native.exporter_info(handle)

    def stop(self) -> None:
        """Stops sampling (completing the recording, if any), then the server.
        Harmless when already stopped."""
        if self._handle is not None:
            _native.exporter_stop(self._handle)
            self._handle = None

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._handle is not None else "stopped"
        return f"<wattmeter.Server {self.url} {state}>"


def serve(
    listen: str = "127.0.0.1:5001",
    *,
    period_s: float = _native.DEFAULT_PERIOD_S,
    sysfs_root: "str | None" = None,
    procfs_root: "str | None" = None,
    nvml_lib: "str | None" = None,
    no_gpu: bool = False,
    per_process: bool = False,
    per_cgroup: bool = False,
    max_series: int = 0,
    web_config_file: "str | None" = None,
    record_dir: "str | None" = None,
    reprobe_s: float = _native.DEFAULT_REPROBE_S,
) -> Server:
    """Exposes this machine's energy and power to Prometheus, as
    ``wattmeter serve`` does, from a native thread (no GIL) until
    ``.stop()``. ``listen`` "127.0.0.1:0" picks a free port (``.port``).

    >>> srv = wattmeter.serve("127.0.0.1:0")           # doctest: +SKIP
    >>> urllib.request.urlopen(srv.url + "/metrics")   # doctest: +SKIP
    >>> srv.stop()                                      # doctest: +SKIP

    Every ``reprobe_s`` seconds (0: never) sources that are absent,
    forbidden or failing are probed again and the meter switches to one that
    now reads, the exported counters carrying on (docs/exporter.md).

    Raises OSError (with the fix in its message, naming these arguments) for
    an address in use, a bad web config, or a meter that cannot start.
    """
    try:
        handle = _native.exporter_start(
            listen, period_s, sysfs_root, procfs_root, nvml_lib, no_gpu, per_process, per_cgroup,
            max_series, web_config_file, record_dir, reprobe_s,
        )
    except OSError as e:
        msg = str(e.strerror or e)
        for cli, py in _SERVE_ADVICE:
            msg = msg.replace(cli, py)
        raise (type(e)(e.errno, msg) if e.errno is not None else type(e)(msg)) from None
    return Server(handle)


# The core's messages name `wattmeter serve`'s options; from Python the same
# fix is an argument of serve().
_SERVE_ADVICE = (
    ("pick another with --listen", "pick another with serve(listen=...), e.g. \"127.0.0.1:0\" for any free port"),
    ("--listen ", "listen="),
    ("--web.config.file", "web_config_file="),
    ("--record", "record_dir="),
    ("--period", "period_s="),
    ("--sysfs-root", "sysfs_root="),
    ("--procfs-root", "procfs_root="),
    ("--nvml-lib", "nvml_lib="),
    ("--no-gpu", "no_gpu=True"),
    ("--max-series", "max_series="),
    ("--per-cgroup", "per_cgroup=True"),
    ("--per-process", "per_process=True"),
)
