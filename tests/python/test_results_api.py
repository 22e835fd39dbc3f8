"""The analysis API: wattmeter.load(DIR) -> Results (metrics, totals over
windows, breakdowns, summary, pandas, plots) and wattmeter.compare().

Recordings are made by the real `wattmeter run` on a fake RAPL tree whose
counters advance at known rates (tests/fixtures/fake_rapl.py); totals are
checked against those rates and against the raw samples.jsonl lines read here
with json, never against what the reader computed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

import wattmeter
from conftest import FAST, PY, busy_code, py_cmd, read_samples, report_json, run_wm

# intel-2pkg rates (fake_rapl.py): W per device and per zone
RATE = {"cpu": 50.0, "dram": 10.0, "psys": 70.0}
CORE_W = 18.0 + 12.0
UNCORE_W = 4.0

# The fake tree's counters are advanced by a thread that runs late on a loaded
# machine (2 shared cores): a counter read at a boundary can lag its true value
# by rate x that delay. So an energy from the known rate is checked to 2 %
# plus up to LAG_S seconds of the rate over the two boundaries together; the
# exact checks are against the raw lines.
LAG_S = 0.1


def assert_energy(got_j, rate_w, seconds, what=""):
    want = rate_w * seconds
    assert abs(got_j - want) <= 0.02 * want + rate_w * LAG_S, f"{what}: {got_j:.3f} J, want {want:.3f} J"


@pytest.fixture(scope="module")
def rec(tmp_path_factory, wm):
    """One recording of a parent and a child burning CPU, 2.5 s, on a fake
    RAPL tree: (folder, raw sample lines)."""
    import sys as _sys

    from conftest import FIXTURES

    if str(FIXTURES) not in _sys.path:
        _sys.path.insert(0, str(FIXTURES))
    from fake_rapl import FakeRapl

    base = tmp_path_factory.mktemp("results")
    fake = FakeRapl(str(base / "sys"), layout="intel-2pkg")
    fake.start(interval_s=0.005)
    try:
        code = (
            "import subprocess, sys\n"
            f"c = subprocess.Popen([sys.executable, '-c', {busy_code(2.0)!r}])\n"
            + busy_code(2.5) + "c.wait()\n"
        )
        out = base / "rec"
        # PSS/USS read while the processes run (the default 10 s period would
        # read them only at the start and the stop, when none of them runs)
        p = run_wm(["run", "-q", "-o", str(out), "--sysfs-root", fake.root, *FAST, "--mem-period", "0.4",
                    "--", *py_cmd(code)])
        assert p.returncode == 0, p.stderr
    finally:
        fake.stop()
    return str(out), read_samples(out)


def raw_t(samples):
    return [s["t_s"] for s in samples]


# ---- metrics and totals --------------------------------------------------------------


def test_metrics_lists_every_series_with_its_unit(rec):
    r = wattmeter.load(rec[0])
    m = r.metrics()
    for dev in ("cpu", "dram", "psys"):
        assert m[f"energy_j.{dev}"] == "J" and m[f"power_w.{dev}"] == "W"
    assert m["attributed_j.cpu"] == "J"
    assert m["zones_energy_j.package-0/core"] == "J"
    assert m["mem_used_bytes"] == "bytes"
    assert m["procs.cpu_share"] == "fraction" and m["procs.pss_bytes"] == "bytes"
    assert not any(k.startswith("gauges.") for k in m)  # no GPU here: not listed
    assert r.devices == ["cpu", "dram", "psys"] and r.gpus == []


def test_total_of_the_whole_run_matches_the_fixture_rates(rec):
    d, samples = rec
    r = wattmeter.load(d)
    span = samples[-1]["t_s"] - samples[0]["t_s"]
    for dev, w in RATE.items():
        assert_energy(r.total(dev), w, span, dev)
        assert r.total(f"energy_j.{dev}") == r.total(dev) == r.total(f"power_w.{dev}")
        # exact: the last cumulative value on disk
        assert r.total(dev) == pytest.approx(samples[-1]["energy_j"][dev], abs=1e-9)
    assert r.duration() == pytest.approx(r.duration_s)


def test_total_of_a_window_is_cut_at_sample_boundaries(rec):
    d, samples = rec
    r = wattmeter.load(d)
    ts = raw_t(samples)
    w = r.window(0.7, 1.9)
    i0 = next(i for i, t in enumerate(ts) if t >= 0.7)
    i1 = max(i for i, t in enumerate(ts) if t <= 1.9)
    assert w["start_s"] == pytest.approx(ts[i0]) and w["end_s"] == pytest.approx(ts[i1])
    for dev, rate in RATE.items():
        want = samples[i1]["energy_j"][dev] - samples[i0]["energy_j"][dev]
        assert r.total(dev, 0.7, 1.9) == pytest.approx(want, abs=1e-6)
        assert_energy(r.total(dev, 0.7, 1.9), rate, ts[i1] - ts[i0], dev)
        assert_energy(r.average(dev, 0.7, 1.9) * (ts[i1] - ts[i0]), rate, ts[i1] - ts[i0], dev)
    assert r.duration(0.7, 1.9) == pytest.approx(ts[i1] - ts[i0])
    # open ends
    assert r.total("cpu", None, 1.9) == pytest.approx(samples[i1]["energy_j"]["cpu"], abs=1e-6)
    assert r.total("cpu", 0.7) == pytest.approx(
        samples[-1]["energy_j"]["cpu"] - samples[i0]["energy_j"]["cpu"], abs=1e-6)


def test_zone_and_attributed_totals(rec):
    d, samples = rec
    r = wattmeter.load(d)
    zl = [s for s in samples if "zones_energy_j" in s]
    span = zl[-1]["t_s"] - zl[0]["t_s"]
    core = r.total("zones_energy_j.package-0/core") + r.total("zones_energy_j.package-1/core")
    assert_energy(core, CORE_W, span, "core")
    assert_energy(r.total("zones_energy_j.package-0/uncore"), UNCORE_W, span, "uncore")
    att = [s["attributed_j"]["cpu"] for s in samples if "attributed_j" in s]
    assert r.total("cpu_attributed") == pytest.approx(att[-1], abs=1e-9)
    assert r.total("attributed_j.cpu") == r.total("cpu_attributed")
    # two busy processes on a two-core machine: most of the package energy is theirs
    assert 0 < r.total("cpu_attributed") <= r.total("cpu") + 1e-9


def test_max_and_average_of_gauges(rec):
    d, samples = rec
    r = wattmeter.load(d)
    peak = max(s["power_w"]["cpu"] for s in samples if "power_w" in s)
    assert r.max("cpu") == pytest.approx(peak)
    assert r.max("cpu") >= r.average("cpu")
    mem = [s["mem_used_bytes"] for s in samples if "mem_used_bytes" in s]
    assert r.average("mem_used_bytes") == pytest.approx(sum(mem) / len(mem))
    assert r.max("mem_used_bytes") == max(mem)


def test_bad_questions_get_clear_errors(rec):
    r = wattmeter.load(rec[0])
    with pytest.raises(KeyError, match="available"):
        r.total("gpu7")
    with pytest.raises(ValueError, match="not an energy"):
        r.total("mem_used_bytes")
    with pytest.raises(ValueError, match="after it ends"):
        r.total("cpu", 2.0, 1.0)
    with pytest.raises(ValueError, match="widen the window"):
        r.total("cpu", 100.0, 200.0)


# ---- breakdowns and summary ---------------------------------------------------------


def test_per_device_per_process_and_per_gpu(rec):
    d, samples = rec
    r = wattmeter.load(d)
    pd_ = r.per_device()
    assert set(pd_) == {"cpu", "dram", "psys"}
    assert pd_["cpu"]["method"] == "measured" and pd_["cpu"]["source"] == "rapl-powercap"
    assert_energy(pd_["cpu"]["avg_w"] * r.duration_s, RATE["cpu"], r.duration_s, "cpu")
    assert pd_["psys"]["attributed_j"] is None
    assert r.per_gpu() == {}
    # per process: the last cumulative value of each PID on disk
    last = {}
    for s in samples:
        for p in s.get("procs", []):
            last[p["pid"]] = p["energy_j"]["cpu"]
    pp = r.per_process()
    assert set(pp) == set(last)
    for pid, e in last.items():
        assert pp[pid]["energy_j"]["cpu"] == pytest.approx(e, abs=1e-6)
    assert r.total("procs.energy_j.cpu") == pytest.approx(sum(last.values()), abs=1e-6)
    es = [sum(v["energy_j"].values()) for v in pp.values()]
    assert es == sorted(es, reverse=True)


def test_summary_is_the_report_dict_and_prints_a_table(rec):
    d, _ = rec
    r = wattmeter.load(d)
    s = r.summary()
    assert s == report_json(d) and r.summary == s
    text = str(s)
    assert "device" in text and "cpu" in text and " J" in text
    assert str(r) == text


# ---- pandas -----------------------------------------------------------------------------


def test_to_pandas_wide_carries_attributed_energy_forward(rec):
    pytest.importorskip("pandas")
    d, samples = rec
    df = wattmeter.load(d).to_pandas()
    assert df.index.name == "t_s" and len(df) == len(samples)
    a = df["attributed_j.cpu"]
    assert not a.isna().any()
    assert a.is_monotonic_increasing
    for s in samples:  # on process-tier lines: the value on disk
        if "attributed_j" in s:
            assert a.loc[s["t_s"]] == pytest.approx(s["attributed_j"]["cpu"])
    assert "zones_energy_j.package-0/core" in df.columns


def test_to_pandas_long(rec):
    pytest.importorskip("pandas")
    d, samples = rec
    r = wattmeter.load(d)
    long = r.to_pandas(form="long")
    assert list(long.columns) == ["t_s", "metric", "series", "device", "value", "unit"]
    e = long[long.metric == "energy_j.cpu"]
    assert len(e) == len(samples) and set(e.unit) == {"J"} and set(e.device) == {"cpu"}
    assert set(long[long.metric == "power_w.dram"].unit) == {"W"}
    with pytest.raises(ValueError):
        r.to_pandas(form="tall")


@pytest.mark.parametrize("module,call,extra", [
    ("pandas", "r.to_pandas()", "-m pip install pandas"),
    ("matplotlib", "r.plot()", "-m pip install matplotlib"),
])
def test_missing_extra_is_named(rec, module, call, extra):
    """The hint is a command that works where wattmeter is installed (it is
    not on the package index, so `pip install 'wattmeter[pandas]'` fails)."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None   # as if not installed
        import wattmeter
        r = wattmeter.load({rec[0]!r})
        try:
            {call}
        except ModuleNotFoundError as e:
            print("ERR", e)
        else:
            print("NO ERROR")
    """)
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "ERR" in p.stdout and f"{PY} {extra}" in p.stdout, p.stdout
    assert "pip install 'wattmeter[" not in p.stdout, p.stdout


# ---- plots ------------------------------------------------------------------------------


def test_plot_has_power_per_device_attributed_shading_and_energy_per_process(rec, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.collections import PolyCollection

    d, samples = rec
    r = wattmeter.load(d)
    fig = r.plot()
    ax, axp = fig.axes[:2]
    assert ax.get_xlabel() == "time since start (s)" and ax.get_ylabel() == "power (W)"
    assert len(ax.lines) == 3  # cpu, dram, psys
    labels = [l.get_label() for l in ax.lines]
    assert labels == ["cpu (measured)", "dram (measured)", "psys (measured)"]
    shaded = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert shaded, "no attributed area"
    # the shaded area is the attributed energy: its integral matches the total
    ts, ws = r.attributed_power("cpu")
    area = sum(w * (t1 - t0) for t0, t1, w in zip(ts, ts[1:], ws[1:]))
    assert area == pytest.approx(r.total("cpu_attributed") - 0.0, rel=1e-6)
    assert axp.get_xlabel() == "energy attributed (J)"
    assert len(axp.patches) >= len(r.per_process())  # one bar per process (and device)
    out = tmp_path / "plot.png"
    fig.savefig(out)
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert img[..., :3].std() > 0.05  # not blank
    # the x-axis labels lie inside the saved figure (not clipped)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rend = canvas.get_renderer()
    fb = fig.bbox
    for a in (ax, axp):
        bb = a.xaxis.label.get_window_extent(rend)
        assert bb.y0 >= fb.y0 - 0.5 and bb.x0 >= fb.x0 - 0.5 and bb.x1 <= fb.x1 + 0.5, a.get_xlabel()


def test_compare_side_by_side(rec, tmp_path):
    d, _ = rec
    a = wattmeter.load(d)
    c = wattmeter.compare([d, a], names=["first", "second"])
    text = str(c)
    assert "first" in text and "second" in text and "cpu J" in text
    rows = c.summary()
    assert rows[0]["energy_j.cpu"] == rows[1]["energy_j.cpu"] == a.energy_j["cpu"]
    assert_energy(rows[0]["avg_w.cpu"] * a.duration_s, RATE["cpu"], a.duration_s, "cpu")
    with pytest.raises(ValueError):
        wattmeter.compare([])
    if pytest.importorskip("pandas"):
        df = c.to_pandas()
        assert list(df.index) == ["first", "second"]
    pytest.importorskip("matplotlib")
    fig = c.plot()
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 2
    fig.savefig(tmp_path / "cmp.png")
    assert os.path.getsize(tmp_path / "cmp.png") > 5000
