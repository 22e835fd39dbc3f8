"""AIPowerMeter's ``gpu_power`` module over wattmeter's NVML reader.

- ``is_nvidia_compatible()`` -> (bool, message), from wattmeter's probe
  (``wattmeter.sensors``): the message says why GPUs cannot be measured and
  what to do. The NVML library is the one wattmeter loads
  (``$WATTMETER_NVML_LIB``, else libnvidia-ml.so.1); no pynvml, no nvidia-smi.
- ``get_gpu_sample()`` -> {"time", "nvidia_power", "per_gpu_nvidia_power",
  ...} and ``get_diff_gpu_sample(s1, s2)`` as AIPowerMeter's (energies in
  joules, their difference over time in watts). The energy is the GPUs'
  hardware energy counter as wattmeter's core reads it, counted from the
  first get_gpu_sample() call of the process rather than from the driver's
  load (differences are the same). Utilisation and memory gauges are not
  given by this function (``per_gpu_nvidia_use_rate``/``_memory`` are empty):
  record with ``Experiment`` or ``wattmeter run`` for those.
- The nvidia-smi functions of AIPowerMeter's earlier generation
  (``get_nvidia_gpu_power``, ``get_gpu_use_pmon``, ``get_nvidia_xml``,
  ``get_min_power``, ``get_gpu_data`` ...) raise NotImplementedError naming
  what replaces them.
"""

from __future__ import annotations

import atexit
import threading
import time
from typing import Any, Dict, Tuple

from . import rapl, rapl_power

_meter: Any = None
_meter_lock = threading.Lock()


def is_nvidia_compatible() -> Tuple[bool, str]:
    """(True, "GPU power will be measured with nvidia") or (False, why not)."""
    import wattmeter

    msg = "nvidia NOT available for energy consumption\n"
    try:
        sens = wattmeter.sensors(rapl.current_sysfs_root() or "/sys", rapl_power.procfs_root)
    except OSError as e:
        return False, msg + f"cannot probe the energy sensors: {e}"
    nv = [s for s in sens.get("sensors", []) if str(s.get("name", "")).startswith("nvml")]
    if any(s.get("state") == "ok" for s in nv):
        return True, "GPU power will be measured with nvidia"
    s = nv[0] if nv else {}
    why = " ".join(x for x in (s.get("detail", "no NVML sensor"), s.get("fix", "")) if x)
    return False, msg + why


def _snapshot() -> Dict[str, Any]:
    global _meter
    from wattmeter import _native

    with _meter_lock:
        if _meter is None:
            # an unrecorded whole-machine meter: its GPU energies count from now
            _meter = _native.meter_start(None, period_s=0.05, pids=[], measure_self=False,
                                         sysfs_root=rapl.current_sysfs_root(),
                                         procfs_root=rapl_power.procfs_root)
            atexit.register(_close)
            time.sleep(0.15)  # its first counter reading
        snap: Dict[str, Any] = _native.meter_snapshot(_meter)
    return snap


def get_gpu_sample() -> Dict[str, Any]:
    """{'time': Unix s, 'nvidia_power': J, 'nvidia_memory': 0,
    'per_gpu_nvidia_power': {0: J, ...}, 'per_gpu_nvidia_use_rate': {},
    'per_gpu_nvidia_memory': {}}: GPU energy counted by wattmeter's NVML
    reader (see the module docstring)."""
    ok, msg = is_nvidia_compatible()
    if not ok:
        raise RuntimeError(msg)
    snap = _snapshot()
    sample: Dict[str, Any] = {"time": time.time(), "nvidia_power": 0.0, "nvidia_memory": 0,
                              "per_gpu_nvidia_power": {}, "per_gpu_nvidia_use_rate": {},
                              "per_gpu_nvidia_memory": {}}
    for name, dev in sorted(snap.get("devices", {}).items()):
        if dev.get("kind") == "gpu" or (name.startswith("gpu") and name[3:].isdigit()):
            i = int(name[3:]) if name[3:].isdigit() else name
            sample["per_gpu_nvidia_power"][i] = float(dev.get("energy_j", 0.0))
            sample["nvidia_power"] += sample["per_gpu_nvidia_power"][i]
    return sample


def get_diff_gpu_sample(s1: Dict[str, Any], s2: Dict[str, Any]) -> Dict[str, Any]:
    """s2 - s1 as AIPowerMeter: keys holding 'power' become watts (energy
    difference / time difference), the others the mean of the two values."""
    dt = s2["time"] - s1["time"]
    if dt <= 0:
        raise ValueError("the two GPU samples were taken at the same instant: wait between them")
    diff: Dict[str, Any] = {}
    for key, value in s1.items():
        if key == "time":
            continue
        if isinstance(value, dict):
            diff[key] = {k: ((s2[key][k] - value[k]) / dt if "power" in key else (s2[key][k] + value[k]) / 2)
                         for k in value if k in s2.get(key, {})}
        else:
            diff[key] = (s2[key] - value) / dt if "power" in key else (s2[key] + value) / 2
    return diff


def _nvidia_smi(name: str) -> Any:
    def f(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"gpu_power.{name}() parsed nvidia-smi's output in AIPowerMeter's earlier generation; wattmeter "
            "reads NVML directly: use get_gpu_sample()/get_diff_gpu_sample(), record with "
            "experiment.Experiment(...).measure_yourself(), or run `wattmeter run -- CMD`")
    f.__name__ = name
    return f


get_gpu_use_pmon = _nvidia_smi("get_gpu_use_pmon")
get_gpu_mem = _nvidia_smi("get_gpu_mem")
get_gpu_use = _nvidia_smi("get_gpu_use")
get_gpu_power = _nvidia_smi("get_gpu_power")
get_gpu_data = _nvidia_smi("get_gpu_data")
get_nvidia_xml = _nvidia_smi("get_nvidia_xml")
get_min_power = _nvidia_smi("get_min_power")
get_nvidia_gpu_power = _nvidia_smi("get_nvidia_gpu_power")


def _close() -> None:
    global _meter
    from wattmeter import _native

    with _meter_lock:
        if _meter is not None:
            _native.meter_stop(_meter)
            _meter = None
