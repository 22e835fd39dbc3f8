"""AIPowerMeter's ``rapl`` module: RAPL domains read from the powercap tree.

The public names of AIPowerMeter's module (``rapl_dir``, ``_read_sysfs_file``,
``_get_domain_info``, ``_walk_rapl_dir``, ``RAPLDomain``, ``RAPLSample``,
``RAPLDifference``, ``RAPLMonitor``, ``UJOULES``, ``JOULES``, ``WATT_HOURS``)
with the same signatures and return shapes, written for wattmeter.

Where AIPowerMeter hard-codes ``/sys``, the tree is read below a sysfs root,
as every wattmeter reader does: ``$WATTMETER_SYSFS_ROOT`` (read when this
module is imported or reloaded; default ``/sys``), or assign ``rapl.rapl_dir``
(every function reads it when called). A container with the host's /sys at
/host/sys: ``WATTMETER_SYSFS_ROOT=/host/sys``.

Differences from AIPowerMeter, on purpose (docs/aipowermeter.md):

- a counter that wrapped between two samples gives ``max_energy_range_uj + 1
  - before + after`` microjoules (the counter takes every value
  0..max_energy_range_uj); AIPowerMeter's one microjoule short;
- ``_walk_rapl_dir`` prunes every non-RAPL sub-folder (sysfs's ``power``,
  ``device``, ``subsystem`` links); AIPowerMeter removed entries from the
  list it was iterating and so kept every second one.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

SYSFS_ROOT_ENV = "WATTMETER_SYSFS_ROOT"
POWERCAP_SUBDIR = "class/powercap/intel-rapl"

sysfs_root: str = os.environ.get(SYSFS_ROOT_ENV) or "/sys"
rapl_dir: str = os.path.join(sysfs_root, POWERCAP_SUBDIR)

UJOULES = 1
JOULES = 2
WATT_HOURS = 3

_RAPL_NAME = re.compile(r"intel-rapl")


def current_sysfs_root() -> Optional[str]:
    """The sysfs root that ``rapl_dir`` lies in (None if rapl_dir was set to
    a folder that does not end in class/powercap/intel-rapl)."""
    d = os.path.normpath(rapl_dir)
    suffix = os.path.normpath("/" + POWERCAP_SUBDIR)
    if d.endswith(suffix):
        return d[: -len(suffix)] or "/"
    return None


def _read_sysfs_file(path: str) -> str:
    with open(path, "r", encoding="ascii", errors="replace") as f:
        return f.read().strip()


def _get_domain_info(path: str) -> Tuple[str, int, int]:
    """(name, energy_uj, max_energy_range_uj) of the RAPL zone folder ``path``."""
    name = _read_sysfs_file(os.path.join(path, "name"))
    energy_uj = int(_read_sysfs_file(os.path.join(path, "energy_uj")))
    max_energy_range_uj = int(_read_sysfs_file(os.path.join(path, "max_energy_range_uj")))
    return name, energy_uj, max_energy_range_uj


def _walk_rapl_dir(path: str) -> Iterator[Tuple[str, List[str], List[str]]]:
    """os.walk over a RAPL tree, top-down, into RAPL zone folders only.

    Raises ValueError if ``path`` does not exist (as AIPowerMeter)."""
    if not os.path.exists(path):
        raise ValueError(
            f"No RAPL directory {path} exists to read from: RAPL CPU power readings may not be "
            "supported on this machine, or sysfs is elsewhere (set $WATTMETER_SYSFS_ROOT or "
            "rapl.rapl_dir). `wattmeter sensors` says which energy sources this machine has.")
    for dirpath, dirnames, filenames in os.walk(path, topdown=True):
        dirnames[:] = sorted(d for d in dirnames if _RAPL_NAME.search(d))
        yield dirpath, dirnames, filenames


class RAPLDomain:
    """One RAPL zone (``package-0``, ``core``, ``dram`` ...) and its energy."""

    name: str
    id: str
    values: Dict[str, int]
    max_values: Dict[str, int]
    subdomains: Dict[str, "RAPLDomain"]
    parent: Optional["RAPLDomain"]

    def __init__(self) -> None:
        self.name = ""
        self.id = ""
        self.values = {}
        self.max_values = {}
        self.subdomains = {}
        self.parent = None

    @classmethod
    def construct(cls, id: str, path: str) -> "RAPLDomain":
        name, energy_uj, max_energy_range_uj = _get_domain_info(path)
        domain = cls()
        domain.name = name
        domain.id = id
        domain.values = {"energy_uj": energy_uj}
        domain.max_values = {"energy_uj": max_energy_range_uj}
        return domain

    def is_subdomain(self) -> bool:
        return len(self.id.split(":")) > 2

    def parent_id(self) -> str:
        return ":".join(self.id.split(":")[0:2])

    def __sub__(self, other: "RAPLDomain") -> "RAPLDomain":
        """The energy between two samples of the same zone, wraps included."""
        assert self.name == other.name and self.id == other.id
        domain = RAPLDomain()
        domain.name = self.name
        domain.id = self.id
        for v in self.values:
            diff = self.values[v] - other.values[v]
            if diff < 0:  # the counter wrapped: it takes every value 0..max
                diff += self.max_values.get(v, other.max_values.get(v, 0)) + 1
            domain.values[v] = diff
        domain.max_values = dict(self.max_values)
        return domain

    def __str__(self) -> str:
        values = " ".join("%s=%s" % (v, self.values[v]) for v in self.values)
        return "%s: %s" % (self.name, values)

    def __repr__(self) -> str:
        return self.__str__()


class RAPLSample:
    """Every RAPL zone's counter at one instant: ``domains`` (top-level zones
    by name, each with its ``subdomains`` by name), ``domains_by_id`` and
    ``timestamp`` (a datetime)."""

    domains: Dict[str, RAPLDomain]
    domains_by_id: Dict[str, RAPLDomain]
    timestamp: datetime.datetime

    def __init__(self) -> None:
        self.domains = {}
        self.domains_by_id = {}
        self.timestamp = datetime.datetime.now()

    @classmethod
    def take_sample(cls) -> "RAPLSample":
        sample = RAPLSample()
        sample.timestamp = datetime.datetime.now()
        for dirpath, dirnames, filenames in _walk_rapl_dir(rapl_dir):
            current = os.path.basename(os.path.normpath(dirpath))
            if len(current.split(":")) == 1:
                continue  # the base of the tree (intel-rapl): no zone
            domain = RAPLDomain.construct(current, dirpath)
            sample.domains_by_id[domain.id] = domain
            sample._link_tree(domain)
        return sample

    def _link_tree(self, domain: RAPLDomain) -> None:
        if domain.is_subdomain():
            parent = self.domains_by_id[domain.parent_id()]
            parent.subdomains[domain.name] = domain
            domain.parent = parent
        else:
            self.domains[domain.name] = domain

    def __sub__(self, other: "RAPLSample") -> "RAPLDifference":
        diff = RAPLDifference()
        diff.duration = (self.timestamp - other.timestamp).total_seconds()
        missing = [i for i in self.domains_by_id if i not in other.domains_by_id]
        if missing:
            raise ValueError(f"RAPL zones {missing} appeared between the two samples: take both "
                             "samples from the same tree")
        # parents before their subdomains, so _link_tree finds them
        for id in sorted(self.domains_by_id, key=lambda i: (len(i.split(":")), i)):
            d = self.domains_by_id[id] - other.domains_by_id[id]
            diff.domains_by_id[id] = d
            diff._link_tree(d)
        return diff

    def energy(self, package: str, domain: Optional[str] = None, unit: int = UJOULES) -> float:
        if not domain:
            e: float = self.domains[package].values["energy_uj"]
        else:
            e = self.domains[package].subdomains[domain].values["energy_uj"]
        if unit == UJOULES:
            return e
        if unit == JOULES:
            return e / 1000000
        if unit == WATT_HOURS:
            return e / (1000000 * 3600)
        raise ValueError(f"unknown unit {unit!r}: rapl.UJOULES, rapl.JOULES or rapl.WATT_HOURS")


class RAPLDifference(RAPLSample):
    """Energy between two samples (``s2 - s1``), over ``duration`` seconds."""

    duration: float = 0.0

    def average_power(self, package: str, domain: Optional[str] = None, unit: int = JOULES) -> float:
        """Watts (joules per second) of a zone over the interval."""
        if self.duration <= 0:
            raise ValueError("the two RAPL samples were taken at the same instant: wait between them")
        return self.energy(package, domain, unit=unit) / self.duration


class RAPLMonitor:
    @classmethod
    def sample(cls) -> RAPLSample:
        return RAPLSample.take_sample()


def _zone_names(sample: Any) -> List[str]:
    names: List[str] = []
    for d in sample.domains.values():
        names.append(d.name)
        names.extend(sd.name for sd in d.subdomains.values())
    return names
