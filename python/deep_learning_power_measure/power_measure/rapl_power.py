"""AIPowerMeter's ``rapl_power`` module: CPU use, memory use and RAPL power.

The public functions of AIPowerMeter's module, same signatures and return
shapes, written for wattmeter: ``is_rapl_compatible``, ``get_processes``,
``get_info_time``, ``get_percent_uses``, ``get_cpu_uses``, ``get_mem_uses``,
``get_relative_mem_use``, ``get_rel_power``, ``get_diff_power_draw`` (and
``get_power``, its name before AIPowerMeter 5be114d's successor, with that
version's keys), ``get_metrics``.

Processes are read from procfs as wattmeter's core reads them (no psutil):
CPU time from ``/proc/PID/stat``, the machine's busy time from ``/proc/stat``
(user + nice + system + irq + softirq + steal, wattmeter's definition), PSS
and USS from ``/proc/PID/smaps_rollup`` (USS = Private_Clean + Private_Dirty
+ Private_Hugetlb), RSS from ``/proc/PID/statm``. The procfs root is
``$WATTMETER_PROCFS_ROOT`` (default ``/proc``) or ``rapl_power.procfs_root``;
the sysfs root is the ``rapl`` module's. ``get_processes`` returns
``Process`` objects (``pid``, ``cpu_times()``, ``memory_info()``,
``memory_full_info()``, ``name()``, ``is_running()``), which can be passed
to a multiprocessing child, as psutil's.

``is_rapl_compatible`` asks wattmeter's probe (``wattmeter.sensors``) and so
says why RAPL is missing and what to do.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from . import rapl

PROCFS_ROOT_ENV = "WATTMETER_PROCFS_ROOT"
procfs_root: str = os.environ.get(PROCFS_ROOT_ENV) or "/proc"

_timer = getattr(time, "monotonic", time.time)
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class NoSuchProcess(Exception):
    """The process ended (or never was)."""

    def __init__(self, pid: int, msg: str = "") -> None:
        super().__init__(msg or f"process {pid} does not exist (any more)")
        self.pid = pid


class ZombieProcess(NoSuchProcess):
    pass


class AccessDenied(Exception):
    pass


class pcputimes(NamedTuple):
    user: float
    system: float
    children_user: float
    children_system: float


class scputimes(NamedTuple):
    """The machine's CPU time in seconds, summed over CPUs."""
    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    irq: float
    softirq: float
    steal: float

    @property
    def busy(self) -> float:
        return self.user + self.nice + self.system + self.irq + self.softirq + self.steal


def _proc(*parts: str) -> str:
    return os.path.join(procfs_root, *parts)


def cpu_times() -> scputimes:
    """The machine's CPU times (seconds) from /proc/stat's aggregate line."""
    with open(_proc("stat"), encoding="ascii") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:9]]
                v += [0] * (8 - len(v))
                return scputimes(*(x / _CLK_TCK for x in v))
    raise OSError(f"{_proc('stat')} has no aggregate 'cpu' line: is the procfs root right?")


def virtual_memory_used_bytes() -> Tuple[int, int]:
    """(MemTotal, MemTotal - MemAvailable) in bytes, as wattmeter's mem_used_bytes."""
    info: Dict[str, int] = {}
    with open(_proc("meminfo"), encoding="ascii") as f:
        for line in f:
            k, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                info[k] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    total = info.get("MemTotal", 0)
    avail = info.get("MemAvailable", info.get("MemFree", 0))
    return total, total - avail


class Process:
    """A process read from procfs (what get_processes returns; psutil.Process's
    methods that AIPowerMeter uses)."""

    def __init__(self, pid: int) -> None:
        self.pid = int(pid)
        self._start = self._stat()[20]  # start time: tells a reused PID apart

    def __repr__(self) -> str:
        return f"Process(pid={self.pid})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Process) and other.pid == self.pid

    def __hash__(self) -> int:
        return hash(self.pid)

    def _read(self, name: str) -> str:
        try:
            with open(_proc(str(self.pid), name), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            raise NoSuchProcess(self.pid) from None
        except ProcessLookupError:
            raise NoSuchProcess(self.pid) from None
        except PermissionError as e:
            raise AccessDenied(f"cannot read {_proc(str(self.pid), name)}: {e}") from None

    def _stat(self) -> List[str]:
        s = self._read("stat")
        # comm may hold spaces and parentheses: the fields follow the last ')'
        head, _, rest = s.rpartition(")")
        fields = rest.split()
        if not head or len(fields) < 20:
            raise NoSuchProcess(self.pid, f"{_proc(str(self.pid), 'stat')} is not a process's stat line")
        return [head.partition("(")[2]] + fields  # [comm, state, ppid, ...]: fields[k] is stat field k+2

    def _alive_stat(self) -> List[str]:
        st = self._stat()
        if hasattr(self, "_start") and st[20] != self._start:
            raise NoSuchProcess(self.pid, f"process {self.pid} ended (its PID was reused)")
        if st[1] in ("Z", "X"):
            raise ZombieProcess(self.pid, f"process {self.pid} is a zombie")
        return st

    def name(self) -> str:
        return self._stat()[0]

    def ppid(self) -> int:
        return int(self._stat()[2])

    def children(self, recursive: bool = False) -> List["Process"]:
        """The processes whose parent is this one (and theirs if recursive)."""
        from .experiment import _children

        return get_processes(_children(self.pid, recursive=recursive))

    def username(self) -> str:
        """The name of the process's real user (its uid if it has no name)."""
        import pwd

        for line in self._read("status").splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                try:
                    return pwd.getpwuid(uid).pw_name
                except KeyError:
                    return str(uid)
        raise NoSuchProcess(self.pid, f"{_proc(str(self.pid), 'status')} has no Uid line")

    def is_running(self) -> bool:
        try:
            self._alive_stat()
            return True
        except NoSuchProcess:
            return False

    def cpu_times(self) -> pcputimes:
        st = self._alive_stat()
        # stat fields 14..17: utime stime cutime cstime, in clock ticks
        return pcputimes(*(int(st[k]) / _CLK_TCK for k in (12, 13, 14, 15)))

    def memory_info(self) -> "collections.OrderedDict[str, int]":
        self._alive_stat()
        statm = self._read("statm").split()
        return _MemInfo(rss=int(statm[1]) * _PAGE, vms=int(statm[0]) * _PAGE)

    def memory_full_info(self) -> "_MemInfo":
        base = self.memory_info()
        text = self._read("smaps_rollup")
        k: Dict[str, int] = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                k[key] = int(parts[0]) * 1024
        if "Pss" not in k:
            raise AccessDenied(f"{_proc(str(self.pid), 'smaps_rollup')} holds no Pss")
        uss = k.get("Private_Clean", 0) + k.get("Private_Dirty", 0) + k.get("Private_Hugetlb", 0)
        return _MemInfo(rss=base["rss"], vms=base["vms"], uss=uss, pss=k["Pss"], swap=k.get("Swap", 0))


class _MemInfo(collections.OrderedDict):  # type: ignore[type-arg]
    """psutil's memory info namedtuples: attributes and ``_asdict()``."""

    def __init__(self, **kw: int) -> None:
        super().__init__(kw)

    def __getattr__(self, k: str) -> int:
        try:
            return int(self[k])
        except KeyError:
            raise AttributeError(k) from None

    def _asdict(self) -> Dict[str, int]:
        return dict(self)


# ---- RAPL -----------------------------------------------------------------------------


def is_rapl_compatible() -> Tuple[bool, str]:
    """(True, what RAPL gives) or (False, why not and what to do), from
    wattmeter's probe of the powercap tree below the sysfs root."""
    root = rapl.current_sysfs_root()
    if root is None:
        # rapl_dir set to a folder of its own: check it the way AIPowerMeter did
        if not os.path.isdir(rapl.rapl_dir):
            return False, "cannot find rapl directory in " + rapl.rapl_dir
        try:
            names = rapl._zone_names(rapl.RAPLSample.take_sample())
        except (OSError, ValueError) as e:
            return False, f"the RAPL files in {rapl.rapl_dir} cannot be read: {e}"
        return True, _rapl_msg(names)
    import wattmeter

    try:
        sens = wattmeter.sensors(root, procfs_root)
    except OSError as e:
        return False, f"cannot probe the energy sensors below {root}: {e}"
    st = next((s for s in sens.get("sensors", []) if s.get("name") == "rapl-powercap"), None)
    if st is None or st.get("state") != "ok":
        st = st or {}
        why = " ".join(x for x in (st.get("state", "absent") + ":", st.get("detail", ""), st.get("fix", "")) if x)
        return False, f"RAPL not usable below {root}: {why}"
    names = [z.get("name", "") for z in sens.get("zones", []) if z.get("state") == "ok" and not z.get("mmio")]
    return True, _rapl_msg(names)


def _rapl_msg(domain_names: Iterable[str]) -> str:
    names = set(domain_names)
    msg = "RAPL available:\n"
    msg += "RAM related energy consumption " + ("available\n" if names & {"dram", "ram"} else "NOT available\n")
    msg += "CPU core related energy consumption " + ("available\n" if names & {"core", "cpu"} else "NOT available\n")
    msg += "uncore related energy consumption " + ("available\n" if "uncore" in names else "NOT available\n")
    msg += "System on Chip related energy consumption " + ("available\n" if "psys" in names else "NOT available\n")
    return msg


def get_diff_power_draw(diff: Any) -> Dict[str, float]:
    """Average watts of the RAPL domains between two samples (``s2 - s1``):
    ``intel_power`` (the packages), ``psys_power`` (-1 without a psys zone, as
    AIPowerMeter), and where the zones exist ``total_dram_power``,
    ``total_cpu_power`` (core zones; 0 on a package without one, as
    AIPowerMeter) and ``uncore_power``."""
    total_intel_power = 0.0
    total_dram_power = 0.0
    total_cpu_power = 0.0
    total_uncore_power = 0.0
    psys_power = -1.0
    found = set()
    for d in diff.domains:
        domain = diff.domains[d]
        power = diff.average_power(package=domain.name)
        if domain.name == "psys":
            psys_power = power
            continue
        if "package" not in domain.name:
            raise NotImplementedError(f"Unexpected top level RAPL domain {domain.name!r}: not yet supported "
                                      "(`wattmeter sensors` lists what wattmeter makes of it)")
        found.add("package")
        total_intel_power += power
        for sd in domain.subdomains.values():
            p = diff.average_power(package=domain.name, domain=sd.name)
            name = sd.name.lower()
            found.add(name)
            if name in ("ram", "dram"):
                total_dram_power += p
            elif name in ("core", "cpu"):
                total_cpu_power += p
            elif name == "uncore":
                total_uncore_power += p
    if total_intel_power == 0:
        raise ValueError("It seems that power estimates from Intel RAPL are coming back 0, this indicates a "
                         "problem (`wattmeter sensors` checks the counters).")
    out: Dict[str, float] = {"intel_power": total_intel_power, "psys_power": psys_power}
    if found & {"ram", "dram"}:
        out["total_dram_power"] = total_dram_power
    if found & {"core", "cpu", "package"}:
        out["total_cpu_power"] = total_cpu_power
    if "uncore" in found:
        out["uncore_power"] = total_uncore_power
    return out


def get_power(diff: Any) -> Dict[str, float]:
    """get_diff_power_draw under its earlier name, with that version's keys
    (``dram_power``, ``cpu_power`` for total_dram_power, total_cpu_power)."""
    out = get_diff_power_draw(diff)
    r: Dict[str, float] = {"intel_power": out["intel_power"], "psys_power": out["psys_power"]}
    if "total_dram_power" in out:
        r["dram_power"] = out["total_dram_power"]
    if "total_cpu_power" in out:
        r["cpu_power"] = out["total_cpu_power"]
    if "uncore_power" in out:
        r["uncore_power"] = out["uncore_power"]
    return r


# ---- processes ------------------------------------------------------------------------


def get_processes(pid_list: Iterable[int]) -> List[Process]:
    """Process objects for the PIDs that exist (the others are skipped)."""
    out: List[Process] = []
    for pid in pid_list:
        try:
            out.append(Process(int(pid)))
        except (NoSuchProcess, AccessDenied):
            pass
    return out


def get_info_time(process_list: Iterable[Any], zombies: Optional[List[int]] = None
                  ) -> Tuple[Dict[int, Tuple[Any, Any]], List[int]]:
    """({pid: (machine cpu times, process cpu times)}, zombies): processes
    that ended are added to ``zombies``."""
    infos: Dict[int, Tuple[Any, Any]] = {}
    if zombies is None:
        zombies = []
    for p in process_list:
        try:
            pt = p.cpu_times()
            infos[p.pid] = (cpu_times(), pt)
        except (NoSuchProcess, AccessDenied):
            zombies.append(p.pid)
        except Exception as e:  # psutil.Process objects passed in
            if type(e).__name__ in ("NoSuchProcess", "ZombieProcess", "AccessDenied"):
                zombies.append(p.pid)
            else:
                raise
    return infos, zombies


def _busy(t: Any) -> float:
    if isinstance(t, scputimes):
        return t.busy
    # psutil's scputimes
    return sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))


def get_percent_uses(infos1: Dict[int, Tuple[Any, Any]], infos2: Dict[int, Tuple[Any, Any]],
                     zombies: List[int], process_list: Iterable[Any]) -> Tuple[Dict[int, float], Dict[int, float]]:
    """({pid: share of the machine's busy CPU time}, {pid: CPU seconds}) between
    two get_info_time() readings."""
    cpu_percent: Dict[int, float] = {}
    absolute: Dict[int, float] = {}
    for p in process_list:
        if p.pid in zombies or p.pid not in infos1 or p.pid not in infos2:
            continue
        sys1, pt1 = infos1[p.pid]
        sys2, pt2 = infos2[p.pid]
        proc_s = (pt2.user - pt1.user) + (pt2.system - pt1.system)
        busy_s = _busy(sys2) - _busy(sys1)
        # the process and the machine are read at slightly different
        # instants: a share is never more than the whole
        cpu_percent[p.pid] = min(1.0, proc_s / busy_s) if busy_s > 0 else 0.0
        absolute[p.pid] = proc_s
    return cpu_percent, absolute


def get_cpu_uses(process_list: Iterable[Any], period: float = 2.0) -> Tuple[Dict[int, float], Dict[int, float]]:
    """Measures for ``period`` seconds: ({pid: share of the machine's busy
    CPU time}, {pid: CPU seconds used})."""
    plist = list(process_list)
    infos1, zombies = get_info_time(plist)
    time.sleep(period)
    infos2, zombies = get_info_time(plist, zombies)
    return get_percent_uses(infos1, infos2, zombies, plist)


def get_rel_power(rel_uses: Dict[int, float], power: float) -> Dict[int, float]:
    """{pid: share x power}."""
    return {pid: rel * power for pid, rel in rel_uses.items()}


def get_relative_mem_use(mem_info_per_process: Mapping[int, float]) -> Dict[int, float]:
    """{pid: memory / memory in use on the machine} (a fraction)."""
    _, used = virtual_memory_used_bytes()
    return {pid: (mem / float(used) if used else 0.0) for pid, mem in mem_info_per_process.items()}


def get_mem_uses(process_list: Iterable[Any]) -> Tuple[Dict[int, int], Dict[int, int]]:
    """({pid: PSS bytes, or RSS where PSS cannot be read}, {pid: USS bytes})."""
    pss: Dict[int, int] = {}
    uss: Dict[int, int] = {}
    for p in process_list:
        try:
            try:
                info = dict(p.memory_full_info()._asdict())
            except Exception as e:
                if not isinstance(e, AccessDenied) and type(e).__name__ != "AccessDenied":
                    raise
                info = dict(p.memory_info()._asdict())
        except Exception as e:
            if isinstance(e, NoSuchProcess) or type(e).__name__ in ("NoSuchProcess", "ZombieProcess"):
                continue
            raise
        pss[p.pid] = info["pss"] if "pss" in info else info["rss"]
        if "uss" in info:
            uss[p.pid] = info["uss"]
    return pss, uss


def get_metrics(pid_list: Iterable[int], period: float = 2.0, memory_usage: bool = True,
                measure_rapl: bool = True, measure_cpu_usage: bool = True) -> Dict[str, Any]:
    """One AIPowerMeter CPU sample over ``period`` seconds for pid_list: the
    keys of power_metrics.json's "cpu" object."""
    metrics: Dict[str, Any] = {}
    pids = list(pid_list)
    s1 = rapl.RAPLSample.take_sample() if measure_rapl else None
    process_list = get_processes(pids) if (measure_cpu_usage or memory_usage) else []
    cpu_uses: Dict[int, float] = {}
    if measure_cpu_usage:
        cpu_uses, absolute = get_cpu_uses(process_list, period=period)
        metrics["per_process_cpu_uses"] = cpu_uses
        metrics["absolute_cpu_time_per_pid"] = absolute
    mem_uses: Dict[int, float] = {}
    if memory_usage:
        pss, uss = get_mem_uses(process_list)
        mem_uses = get_relative_mem_use(pss)
        metrics["per_process_mem_use_abs"] = pss
        metrics["per_process_mem_use_percent"] = mem_uses
        if uss:
            metrics["per_process_mem_use_uss"] = uss
        metrics["total_mem_use"] = virtual_memory_used_bytes()[1]
    if s1 is not None:
        power = get_diff_power_draw(rapl.RAPLSample.take_sample() - s1)
        metrics.update(power)
        if measure_cpu_usage:
            metrics["rel_intel_power"] = get_rel_power(cpu_uses, power["intel_power"])
            if "total_cpu_power" in power:
                metrics["per_process_cpu_power"] = get_rel_power(cpu_uses, power["total_cpu_power"])
        if memory_usage and "total_dram_power" in power:
            metrics["per_process_dram_power"] = get_rel_power(mem_uses, power["total_dram_power"])
    return metrics
