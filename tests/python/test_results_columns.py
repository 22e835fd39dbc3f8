"""Results read a recording once: every query after load() answers from the
columns the C reader parsed (issue 16), never from the files again.

The recording is synthetic, in the writer's line shape, with known rates:
cpu at 50 W, dram at 10 W, a RAPL zone at 30 W, a GPU gauge, and on every
10th line four processes at 10 W of cpu each. Each answer is compared with
what those rates give, after samples.jsonl has been deleted.
"""
import json
import math
import os

import pytest

import wattmeter

N = 600  # lines after the baseline, one per second
PIDS = (101, 102, 103, 104)


def write(d):
    os.makedirs(d)
    devices = [{"name": "cpu", "method": "measured", "source": "rapl-powercap"},
               {"name": "dram", "method": "measured", "source": "rapl-powercap"}]
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"schema": "wattmeter.recording", "schema_version": 1, "command": ["x"], "period_s": 1.0,
                   "devices": devices, "duration_s": float(N), "exit_status": 0, "complete": True}, f)
    with open(os.path.join(d, "samples.jsonl"), "w") as f:
        f.write('{"t_s":0,"energy_j":{"cpu":0,"dram":0}}\n')
        for i in range(1, N + 1):
            o = {"t_s": float(i), "energy_j": {"cpu": 50.0 * i, "dram": 10.0 * i},
                 "power_w": {"cpu": 50.0 if i != 300 else 80.0, "dram": 10.0},
                 "cpu_util": 0.25 if i % 2 else 0.75,
                 "zones_energy_j": {"package-0/core": 30.0 * i},
                 "gauges": {"cpu": {"freq_mhz": 1000.0 + i}}}
            if i % 10 == 0:
                o["attributed_j"] = {"cpu": 40.0 * i}
                o["procs"] = [{"pid": p, "cpu_s": 1.0, "energy_j": {"cpu": 10.0 * i}} for p in PIDS]
                if i == 10:
                    o["new_procs"] = [{"pid": p, "cmdline": "w%d" % p} for p in PIDS]
            f.write(json.dumps(o) + "\n")


@pytest.fixture()
def loaded(tmp_path):
    d = str(tmp_path / "rec")
    write(d)
    r = wattmeter.load(d)
    os.remove(os.path.join(d, "samples.jsonl"))  # from here on, only the parsed columns can answer
    return r


def test_totals_and_windows_answer_from_the_columns_once_loaded(loaded):
    r = loaded
    assert r.total("cpu") == pytest.approx(50.0 * N)
    # cut at sample boundaries: the first line at or after 100.5 (t=101), the last at or before 250.2 (t=250)
    assert r.total("cpu", start=100.5, end=250.2) == pytest.approx(50.0 * (250 - 101))
    assert r.total("dram", start=0, end=60) == pytest.approx(10.0 * 60)
    assert r.total("zones_energy_j.package-0/core", start=10, end=20) == pytest.approx(30.0 * 10)
    # attributed energy is on process-tier lines: cut at t=100 and t=250
    assert r.total("cpu_attributed", start=100.5, end=250.2) == pytest.approx(40.0 * (250 - 100))
    w = r.window(100.5, 250.2)
    assert (w["first_row"], w["last_row"]) == (101, 250)


def test_averages_and_maxima_in_a_window(loaded):
    r = loaded
    assert r.average("cpu_util", start=1, end=4) == pytest.approx(0.5)   # 0.25, 0.75, 0.25, 0.75
    assert r.average("cpu_util", start=1, end=3) == pytest.approx(1.25 / 3)
    assert r.average("gauges.cpu.freq_mhz", start=11, end=13) == pytest.approx(1012.0)
    assert r.max("cpu") == pytest.approx(80.0)
    assert r.max("cpu", start=301) == pytest.approx(50.0)
    assert r.average("cpu", start=100, end=200) == pytest.approx(50.0)
    assert math.isnan(r.max("gauges.cpu.freq_mhz", start=N + 5))


def test_per_process_energy_in_a_window(loaded):
    pp = loaded.per_process(start=100.5, end=250.2)
    assert sorted(pp) == list(PIDS)
    for p in PIDS:
        assert pp[p]["energy_j"]["cpu"] == pytest.approx(10.0 * (250 - 100))
        assert pp[p]["cmdline"] == "w%d" % p


def test_metrics_list_what_lines_carry(loaded):
    m = loaded.metrics()
    assert m["energy_j.cpu"] == "J" and m["zones_energy_j.package-0/core"] == "J"
    assert "gauges.cpu.freq_mhz" in m and "procs.cpu_s" in m


def test_to_pandas_from_the_column_buffers(loaded):
    pd = pytest.importorskip("pandas")
    df = loaded.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == N + 1
    assert df["energy_j.cpu"].loc[123.0] == pytest.approx(50.0 * 123)
    assert df["zones_energy_j.package-0/core"].loc[7.0] == pytest.approx(30.0 * 7)
    # attributed energy carried forward between process-tier lines
    assert df["attributed_j.cpu"].loc[15.0] == pytest.approx(40.0 * 10)
    assert math.isnan(df["power_w.cpu"].loc[0.0])


def test_report_text_from_the_loaded_recording(loaded):
    assert "cpu" in loaded.report()
