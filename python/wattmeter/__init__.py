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
from typing import Any, Dict, Optional

from . import _native
from .meter import Meter
from .results import Results, load
from .results import Comparison, compare

__version__: str = _native.version

__all__ = ["Meter", "Results", "load", "sensors", "__version__"]
__all__ += ["compare", "Comparison"]


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
