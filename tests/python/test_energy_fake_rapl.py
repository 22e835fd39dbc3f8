"""Known energies: `wattmeter run` on a fake powercap tree whose counters
advance at known rates (and wrap during the run) reports rate × duration for
every device, adds only non-overlapping zones, and says it measured them."""

from __future__ import annotations

import pytest

from conftest import FAST, py_cmd, read_meta, read_samples, report_json, run_wm

TOL = 0.02  # 2 %


def run_on_fake(fake, out, seconds: float = 3.0):
    p = run_wm(["run", "--sysfs-root", fake.root, "-o", str(out), *FAST, "--",
                *py_cmd(f"import time; time.sleep({seconds})")])
    assert p.returncode == 0, p.stderr
    return p


def assert_close(got: float, want: float, what: str, tol: float = TOL) -> None:
    assert want > 0
    assert abs(got - want) <= tol * want, f"{what}: got {got:.3f} J, want {want:.3f} J ± {tol:.0%}"


def test_intel_two_packages_dram_psys_and_mmio_duplicate(fake_rapl, tmp_path):
    """cpu = package-0 + package-1 (mmio twin counted once, core/uncore never
    added), dram = both DRAM zones, psys on its own; all measured; the small
    range makes every counted zone wrap at least once during the run."""
    fake = fake_rapl("intel-2pkg")
    rates = fake.device_rates_w()
    assert rates == {"cpu": 50.0, "dram": 10.0, "psys": 70.0}
    assert fake.min_wrap_s() < 1.0  # the run below lasts 3 s: counters wrap

    out = tmp_path / "rec"
    run_on_fake(fake, out)
    s = report_json(out)

    dur = s["duration_s"]
    assert 2.9 < dur < 4.5
    for dev in ("cpu", "dram", "psys"):
        assert_close(s["energy_j"][dev], rates[dev] * dur, dev)
    # Adding core/uncore or the mmio duplicate would show here:
    assert s["energy_j"]["cpu"] < (rates["cpu"] + 30.0) * dur * (1 - TOL)
    assert set(s["method"]) >= {"cpu", "dram", "psys", "cpu_attributed", "dram_attributed"}
    assert all(v == "measured" for v in s["method"].values()), s["method"]
    assert s["source"]["cpu"] == "rapl-powercap"
    assert s["complete"] is True and s["truncated"] is False and s["exit_status"] == 0

    # Every zone is recorded, counted or not, with its own true energy.
    samples = read_samples(out)
    last = samples[-1]
    zones = last["zones_energy_j"]
    labels = {z["label"] for z in fake.zones()}
    assert labels <= set(zones), f"zones missing from zones_energy_j: {labels - set(zones)}"
    t = last["t_s"] - samples[0]["t_s"]
    for z in fake.zones():
        assert_close(zones[z["label"]], z["rate_w"] * t, f"zone {z['label']}", tol=0.03)
    assert zones["mmio:package-0"] == pytest.approx(zones["package-0"], rel=0.01)

    meta = read_meta(out)
    assert meta["complete"] is True
    mmio = [z for z in meta["zones"] if z["mmio"]]
    assert len(mmio) == 1 and mmio[0]["counted"] is False
    core = [z for z in meta["zones"] if z["domain"] in ("core", "uncore")]
    assert core and not any(z["counted"] for z in core)
    rapl = next(x for x in meta["sensors"] if x["name"] == "rapl-powercap")
    assert rapl["state"] == "ok"


def test_amd_single_package_counts_package_not_core(fake_rapl, tmp_path):
    """AMD Zen exposes package and core under intel-rapl names: cpu = the
    package only; no dram or psys keys where the machine has none."""
    fake = fake_rapl("amd-1pkg", rates_w={"package-0": 25.0, "package-0/core": 15.0})
    out = tmp_path / "rec"
    run_on_fake(fake, out, seconds=2.0)
    s = report_json(out)
    assert_close(s["energy_j"]["cpu"], 25.0 * s["duration_s"], "cpu")
    assert "dram" not in s["energy_j"] and "psys" not in s["energy_j"]
    assert s["method"]["cpu"] == "measured"


def test_multi_die_package_sums_every_die(fake_rapl, tmp_path):
    """A package split into dies (package-0-die-0, package-0-die-1): cpu is
    the sum of the dies."""
    fake = fake_rapl("die", rates_w={"package-0-die-0": 12.0, "package-0-die-1": 18.0})
    assert fake.device_rates_w()["cpu"] == 30.0
    out = tmp_path / "rec"
    run_on_fake(fake, out, seconds=2.0)
    s = report_json(out)
    assert_close(s["energy_j"]["cpu"], 30.0 * s["duration_s"], "cpu")
    assert s["method"]["cpu"] == "measured"


def test_energy_is_cumulative_and_power_matches_rate(fake_rapl, tmp_path):
    """Samples carry cumulative energy (never decreasing, even across wraps)
    and the derived power of each period is close to the true rate."""
    fake = fake_rapl("intel-2pkg")
    out = tmp_path / "rec"
    run_on_fake(fake, out, seconds=2.0)
    samples = read_samples(out)
    assert len(samples) > 20
    cpu = [x["energy_j"]["cpu"] for x in samples]
    assert all(b >= a for a, b in zip(cpu, cpu[1:])), "cumulative cpu energy went backwards"
    powers = sorted(x["power_w"]["cpu"] for x in samples[1:])
    median = powers[len(powers) // 2]
    assert median == pytest.approx(50.0, rel=0.1)
