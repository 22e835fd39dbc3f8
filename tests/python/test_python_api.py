"""The Python front: Meter as a context manager, a decorator and with
start()/stop(); Results and load(); measured children; fork safety."""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import subprocess
import textwrap
import time

import pytest

import wattmeter
from conftest import FAST, PY, assert_child_cpu, read_meta, read_sample_lines, report_json, run_wm

FASTKW = dict(period=0.05, proc_period=0.2)


def burn_cpu(cpu_s: float) -> None:
    """A fixed amount of CPU time, however loaded the machine is."""
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass


def burn_wall(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def is_monotonic(xs) -> bool:
    return all(b >= a for a, b in zip(xs, xs[1:]))


# ---- the three ways to use a Meter --------------------------------------------------


def test_context_manager_records_and_returns_results(tmp_path):
    out = tmp_path / "rec"
    with wattmeter.Meter(str(out), **FASTKW) as m:
        assert m.running
        burn_wall(0.5)
        snap = m.snapshot()
        assert isinstance(snap, dict)
    assert not m.running
    r = m.results
    assert isinstance(r, wattmeter.Results)
    assert r.dir == str(out) == m.dir
    assert r.complete is True and r.truncated is False
    assert 0.4 < r.duration_s < 3.0
    assert {"cpu", "cpu_attributed"} <= set(r.energy_j)
    assert set(r.method) == set(r.energy_j)
    assert set(r.method.values()) <= {"measured", "modeled"}
    assert r.energy_j["cpu"] > 0 and r.energy_j["cpu_attributed"] > 0
    assert str(os.getpid()) in r.processes  # this process is measured
    meta = read_meta(out)
    assert meta["complete"] is True and meta["exit_status"] is None


def test_decorator_makes_one_recording_per_call(tmp_path):
    out = tmp_path / "step"
    meter = wattmeter.Meter(str(out), **FASTKW)

    @meter
    def step(x):
        burn_wall(0.2)
        return x * 2

    assert step(1) == 2
    first = meter.dir
    assert step(2) == 4
    second = meter.dir
    assert first != second
    for d in (first, second):
        assert read_meta(d)["complete"] is True
        assert wattmeter.load(d).energy_j["cpu"] > 0


def test_decorator_without_output_dir_uses_new_timestamped_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @wattmeter.Meter(**FASTKW)
    def step():
        burn_wall(0.1)

    step()
    step()
    runs = sorted(os.listdir(tmp_path / "wattmeter-runs"))
    assert len(runs) == 2
    for d in runs:
        assert read_meta(tmp_path / "wattmeter-runs" / d)["complete"] is True


def test_start_stop(tmp_path):
    m = wattmeter.Meter(str(tmp_path / "rec"), **FASTKW).start()
    with pytest.raises(RuntimeError):
        m.start()  # already running
    burn_wall(0.3)
    r = m.stop()
    assert r is m.results
    assert r.energy_j["cpu"] > 0
    with pytest.raises(RuntimeError):
        m.stop()  # not running


def test_to_pandas_is_indexed_by_time_with_cumulative_energy(tmp_path):
    pytest.importorskip("pandas")
    with wattmeter.Meter(str(tmp_path / "rec"), **FASTKW) as m:
        burn_wall(0.6)
    df = m.results.to_pandas()
    assert df.index.name == "t_s"
    assert len(df) >= 8
    assert df.index.is_monotonic_increasing
    assert "energy_j.cpu" in df.columns and "power_w.cpu" in df.columns
    assert df["energy_j.cpu"].is_monotonic_increasing  # non-decreasing
    assert df["energy_j.cpu"].iloc[0] == 0
    assert df["energy_j.cpu"].iloc[-1] == pytest.approx(m.results.energy_j["cpu"], rel=1e-6)
    assert df.attrs["method"] == m.results.method


def test_meter_on_a_fake_rapl_tree_measures_known_energy(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg")
    with wattmeter.Meter(str(tmp_path / "rec"), sysfs_root=fake.root, **FASTKW) as m:
        time.sleep(1.5)
    r = m.results
    assert r.method["cpu"] == r.method["dram"] == r.method["psys"] == "measured"
    assert not r.modeled
    for dev, w in fake.device_rates_w().items():
        assert r.energy_j[dev] == pytest.approx(w * r.duration_s, rel=0.02), dev


# ---- children --------------------------------------------------------------------


def test_multiprocessing_child_is_attributed_to_the_measured_set(tmp_path):
    ctx = mp.get_context("fork")
    with wattmeter.Meter(str(tmp_path / "rec"), **FASTKW) as m:
        child = ctx.Process(target=burn_cpu, args=(1.0,))
        child.start()
        child.join()
        time.sleep(0.3)
    assert child.exitcode == 0
    r = m.results
    assert str(child.pid) in r.processes, sorted(r.processes)
    p = r.processes[str(child.pid)]
    assert_child_cpu(p["cpu_s"], 1.0, FASTKW["proc_period"])
    assert p["energy_j"]["cpu"] > 0
    assert p["energy_j"]["cpu"] <= r.energy_j["cpu_attributed"] + 1e-6


FORK_SCRIPT = textwrap.dedent("""
    # Runs as its own process (a forked pytest would go on running the suite).
    import atexit, json, os, sys, time
    import wattmeter

    def burn(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    with wattmeter.Meter(sys.argv[1], period=0.02, proc_period=0.1) as m:
        burn(0.2)
        a = os.fork()
        if a == 0:                      # leaves without any Python cleanup
            time.sleep(0.3)
            os._exit(0)
        r, w = os.pipe()
        b = os.fork()
        if b == 0:                      # leaves through sys.exit: unwinds the
            os.close(r)                 # with-block, runs atexit and finalizers
            atexit.register(os.write, w, b"atexit ran")
            time.sleep(0.3)
            sys.exit(0)
        os.close(w)
        _, sa = os.waitpid(a, 0)
        _, sb = os.waitpid(b, 0)
        atexit_out = os.read(r, 100).decode()
        burn(0.2)
    print(json.dumps({"a": os.waitstatus_to_exitcode(sa), "b": os.waitstatus_to_exitcode(sb),
                      "atexit": atexit_out, "complete": m.results.complete}))
""")


@pytest.fixture(scope="module")
def forked_run(tmp_path_factory):
    """The recording of a Meter whose process forked two children inside it,
    with the script's stdout/stderr (the children's stderr included)."""
    d = tmp_path_factory.mktemp("fork")
    script = d / "fork.py"
    script.write_text(FORK_SCRIPT)
    out = d / "rec"
    p = subprocess.run([PY, str(script), str(out)], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return out, json.loads(p.stdout.splitlines()[-1]), p


def test_forked_children_never_write_to_the_recording(forked_run):
    """A child that leaves with os._exit(0) and one that leaves with
    sys.exit() (running atexit handlers, finalizers and the with-block's
    __exit__) both outlive several samples; the recording still has one
    baseline, well-formed increasing lines, a complete meta.json, nothing else."""
    out, info, _ = forked_run
    assert info["a"] == 0
    assert info["atexit"] == "atexit ran"  # the second child really went through sys.exit
    assert info["complete"] is True
    time.sleep(0.2)  # anything a stray child might still write

    assert sorted(os.listdir(out)) == ["meta.json", "samples.jsonl"]
    raw = (out / "samples.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    samples = [json.loads(line) for line in read_sample_lines(out)]  # every line is whole JSON
    ts = [x["t_s"] for x in samples]
    assert all(b > a for a, b in zip(ts, ts[1:])), "t_s not strictly increasing: duplicated or interleaved lines"
    assert sum(1 for t in ts if t == ts[0]) == 1
    assert all(v == 0 for v in samples[0]["energy_j"].values())
    assert sum(1 for x in samples if all(v == 0 for v in x["energy_j"].values())) == 1
    assert len(samples) > 20
    meta = read_meta(out)
    assert meta["complete"] is True
    assert meta["self"]["samples"] in (len(samples), len(samples) - 1)
    s = report_json(out)
    assert s["complete"] is True and s["truncated"] is False and s["samples"] == meta["self"]["samples"]


def test_forked_child_leaving_the_with_block_exits_cleanly(forked_run):
    """The sys.exit(0) child unwinds the Meter block (Meter.__exit__) in the
    child. wattmeter.h promises every call in a forked child is a no-op, so the
    child must exit 0, quietly, as it would without a Meter."""
    _, info, p = forked_run
    assert info["b"] == 0, f"child exited {info['b']}: {p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr


def test_baseline_line_has_t_s_zero(tmp_path):
    """docs/recording.md: "The first line (t_s = 0) is the baseline: every
    energy is 0" — exactly one such line."""
    out = tmp_path / "rec"
    with wattmeter.Meter(str(out), **FASTKW):
        burn_wall(0.3)
    samples = [json.loads(line) for line in read_sample_lines(out)]
    assert samples[0]["t_s"] == 0, f"baseline t_s is {samples[0]['t_s']}, not 0"
    assert sum(1 for x in samples if x["t_s"] == 0) == 1
    assert all(v == 0 for v in samples[0]["energy_j"].values())


# ---- errors, sensors, load ----------------------------------------------------------


# A recording that cannot be made never stops the code (issue 7): the meter
# measures unrecorded, with a RuntimeWarning naming the folder and the fix.


def test_meter_on_an_existing_recording_warns_and_measures_unrecorded(tmp_path):
    out = tmp_path / "rec"
    with wattmeter.Meter(str(out), **FASTKW):
        pass
    before = (out / "samples.jsonl").read_bytes()
    m = wattmeter.Meter(str(out))
    with pytest.warns(RuntimeWarning) as w:
        m.start()
    msg = str(w[0].message)
    assert str(out) in msg and "output_dir" in msg and "-o DIR" not in msg
    assert m.running and not m.recorded
    r = m.stop()
    assert r is not None and r.summary["recorded"] is False
    assert (out / "samples.jsonl").read_bytes() == before


def test_meter_under_a_regular_file_warns_and_measures_unrecorded(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.warns(RuntimeWarning, match=str(tmp_path / "file" / "sub")):
        m = wattmeter.Meter(str(tmp_path / "file" / "sub")).start()
    assert m.running
    m.stop()


def test_sensors_returns_a_dict_of_sources(tmp_path):
    s = wattmeter.sensors()
    assert isinstance(s, dict)
    names = {x["name"] for x in s["sensors"]}
    assert {"rapl-powercap", "cpu-model", "procfs"} <= names
    for x in s["sensors"]:
        assert x["state"] in ("ok", "absent", "permission denied", "modeled", "error", "unused")


def test_load_of_a_cli_recording_equals_report_json(tmp_path):
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "-o", str(out), *FAST, "--", "sleep", "0.5"])
    assert p.returncode == 0
    r = wattmeter.load(str(out))
    s = report_json(out)
    assert r.summary == s
    assert r.energy_j == s["energy_j"] and r.method == s["method"]
    assert r.duration_s == s["duration_s"] and r.processes == s["processes"]
    assert r.report() == run_wm(["report", str(out)]).stdout


def test_load_of_a_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(OSError) as e:
        wattmeter.load(str(tmp_path / "nothing"))
    assert "nothing" in str(e.value)


def test_load_errors_carry_the_reason_as_an_errno(tmp_path):
    # no folder: FileNotFoundError, naming it
    with pytest.raises(FileNotFoundError) as e:
        wattmeter.load(str(tmp_path / "nope"))
    assert "nope" in str(e.value)
    # a recording from a newer wattmeter: ENOTSUP, saying to upgrade
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), *FAST, "--", "true"]).returncode == 0
    meta = json.loads((out / "meta.json").read_text())
    meta["schema_version"] = 99
    (out / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(OSError) as e:
        wattmeter.load(str(out))
    assert e.value.errno == errno.ENOTSUP and "upgrade" in str(e.value)
