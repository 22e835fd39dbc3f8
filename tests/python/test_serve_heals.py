"""A daemon that heals, and an exporter that shows its gaps.

`wattmeter serve` started before the RAPL tree exists models the CPU; when the
tree appears (a modprobe, a udev fix, a slow boot) the re-probe switches it to
the counters, and the exported counters go on rising. While a counter fails
to read, wattmeter_sensor_up says 0 and the read errors are counted.
"""

from __future__ import annotations

import time

import pytest

from conftest import FakeRapl, wait_for
from test_counter_faults import needs_fuse, fault_tree  # noqa: F401  (fixture)
from test_exporter import metrics_when_ready, parse_series, serve  # noqa: F401  (fixture)

MEASURED = 'wattmeter_cpu_energy_joules_total{device="cpu",zone="package-0",source="rapl-powercap",method="measured"}'
MODELED = 'wattmeter_cpu_energy_joules_total{device="cpu",zone="cpu-model",source="cpu-model",method="modeled"}'


def test_serve_switches_from_the_model_to_rapl_when_it_appears(serve, tmp_path):
    root = tmp_path / "sys"
    root.mkdir()
    s = serve("--sysfs-root", str(root), "--period", "0.1", "--reprobe", "0.5", "--no-gpu")
    before = parse_series(metrics_when_ready(s.url))
    assert MODELED in before and MEASURED not in before
    fake = FakeRapl(str(root), layout="amd-1pkg", rates_w={"package-0": 30.0})
    fake.start(interval_s=0.005)
    try:
        got = {}

        def switched() -> bool:
            got.update(parse_series(metrics_when_ready(s.url)))
            return MEASURED in got
        assert wait_for(switched, timeout=10.0), sorted(got)
        # counters present before and after never go back
        for k in ("wattmeter_samples_total", "wattmeter_self_cpu_seconds_total"):
            assert got[k] >= before[k], (k, before[k], got[k])
        # and the measured one runs at the fixture's rate
        t1, e1 = time.monotonic(), got[MEASURED]
        time.sleep(2.0)
        m = parse_series(metrics_when_ready(s.url))
        t2, e2 = time.monotonic(), m[MEASURED]
        assert abs((e2 - e1) / (t2 - t1) - 30.0) < 30.0 * 0.15, (e1, e2, t2 - t1)
        assert m['wattmeter_sensor_up{sensor="rapl-powercap",state="ok"}'] == 1
    finally:
        fake.stop()
    rc, err = s.stop()
    assert rc == 0, err
    assert "re-probe: rapl-powercap now readable (was absent)" in err, err


def test_reprobe_off_stays_on_the_model(serve, tmp_path):
    root = tmp_path / "sys"
    root.mkdir()
    s = serve("--sysfs-root", str(root), "--period", "0.1", "--reprobe", "0", "--no-gpu")
    metrics_when_ready(s.url)
    fake = FakeRapl(str(root), layout="amd-1pkg")
    fake.start(interval_s=0.005)
    try:
        time.sleep(1.5)
        assert MEASURED not in parse_series(metrics_when_ready(s.url))
    finally:
        fake.stop()


@needs_fuse
def test_sensor_up_is_0_while_the_counter_fails_and_errors_are_counted(fault_tree, serve):
    tree = fault_tree(limit_uw=40_000_000)
    s = serve("--sysfs-root", str(tree.mount), "--period", "0.1", "--no-gpu", "--reprobe", "0")
    up = 'wattmeter_sensor_up{sensor="rapl-powercap",state="ok"}'
    errors = 'wattmeter_sensor_read_errors_total{sensor="rapl-powercap"}'
    m = parse_series(metrics_when_ready(s.url))
    assert m[up] == 1 and m[errors] == 0
    tree.fault(zone="intel-rapl:0", fault="eio", for_s=2.0)
    time.sleep(0.6)
    m = parse_series(metrics_when_ready(s.url))
    assert m[up] == 0 and m[errors] >= 2, m
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url))[up] == 1, timeout=5.0)
    m = parse_series(metrics_when_ready(s.url))
    assert m[errors] >= 10  # ~20 failed reads in 2 s at 0.1 s
    tree.fault(zone="intel-rapl:0", fault="jump", j=10000, for_s=0.15)
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url))[
        'wattmeter_sensor_rejected_readings_total{sensor="rapl-powercap"}'] >= 1, timeout=5.0)


@needs_fuse
def test_serve_heals_after_a_driver_reload_and_counters_go_on(fault_tree, serve):
    """A driver reload kills the open counter files for good (ENODEV): the
    meter alone can never read them again. The re-probe of a source failing
    for an interval finds the zone anew and switches to it."""
    tree = fault_tree(limit_uw=40_000_000)
    s = serve("--sysfs-root", str(tree.mount), "--period", "0.1", "--no-gpu", "--reprobe", "0.5")
    up = 'wattmeter_sensor_up{sensor="rapl-powercap",state="ok"}'
    m0 = parse_series(metrics_when_ready(s.url))
    assert m0[up] == 1
    tree.fault(zone="intel-rapl:0", fault="reload")
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url))[up] == 0, timeout=5.0)
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url))[up] == 1, timeout=10.0)
    m1 = parse_series(metrics_when_ready(s.url))
    assert m1[MEASURED] >= m0[MEASURED]  # carried over: never back
    t1 = time.monotonic()
    time.sleep(1.5)
    m2 = parse_series(metrics_when_ready(s.url))
    rate = (m2[MEASURED] - m1[MEASURED]) / (time.monotonic() - t1)
    assert abs(rate - 30.0) < 30.0 * 0.2, rate
    rc, err = s.stop()
    assert rc == 0, err
    assert "re-probe: rapl-powercap readable again (was failing)" in err, err


def test_a_lost_gpu_is_down_and_its_read_errors_count(serve, tmp_path, monkeypatch):
    from test_gpu_nvml import MOCK, scenario
    if not MOCK:
        pytest.skip("mock libnvidia-ml not built")
    env = scenario(tmp_path, "gpus=1\ngpu0.watts=200\ngpu0.lost_at_s=0.5\n")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    root = tmp_path / "sys"
    root.mkdir()
    s = serve("--sysfs-root", str(root), "--period", "0.1", "--nvml-lib", MOCK, "--reprobe", "0")
    up = 'wattmeter_sensor_up{sensor="nvml",state="ok"}'
    errors = 'wattmeter_sensor_read_errors_total{sensor="nvml"}'
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url)).get(up) == 0, timeout=10.0)
    assert wait_for(lambda: parse_series(metrics_when_ready(s.url))[errors] >= 3, timeout=5.0)


def test_python_serve_re_probes_too(tmp_path):
    import wattmeter
    root = tmp_path / "sys"
    root.mkdir()
    srv = wattmeter.serve("127.0.0.1:0", period_s=0.1, sysfs_root=str(root), no_gpu=True, reprobe_s=0.3)
    try:
        metrics_when_ready(srv.url)
        fake = FakeRapl(str(root), layout="amd-1pkg")
        fake.start(interval_s=0.005)
        try:
            assert wait_for(lambda: MEASURED in parse_series(metrics_when_ready(srv.url)), timeout=10.0)
        finally:
            fake.stop()
    finally:
        srv.stop()
