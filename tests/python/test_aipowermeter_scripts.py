"""AIPowerMeter's own scripts, reproduced, against wattmeter's drop-in.

GreenAI-Uppa/AIPowerMeter (HEAD fc099d1) ships ``unit_tests/`` and
``examples/`` scripts; CI has no network, so each test here makes the calls
one of those scripts makes, in its order, and checks the shapes it relies on
(the keys it reads, the types it sums) and the values against independent
truths: the fake RAPL tree's known rates, ``os.times()`` of the measured
process, a known allocation, the trapezoid of the raw JSON lines.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import queue as std_queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FIXTURES, PY, busy_code
from deep_learning_power_measure.power_measure import experiment, gpu_power, parsers, prometheus_client, rapl, rapl_power

AIPM = FIXTURES / "aipowermeter"
# see test_aipowermeter_compat: the fake counters' writer thread runs late on
# a loaded machine (2 shared cores), and the reader's clock is read apart
# from its counters: an energy over a window is checked to 2 % plus this many
# seconds of the rate
LAG_S = 0.25
FORK = multiprocessing.get_context("fork")

# intel-2pkg's default rates (tests/fixtures/fake_rapl.py)
RATES = {"intel_power": 30.0 + 20.0, "total_dram_power": 5.0 + 5.0, "total_cpu_power": 18.0 + 12.0,
         "uncore_power": 4.0, "psys_power": 70.0}
BIG_RANGE_UJ = 10 ** 12  # no wrap within a test: AIPowerMeter's scripts sample 1 s apart


@pytest.fixture
def rapl_at(monkeypatch):
    """Points the rapl module at a fake tree's root, as $WATTMETER_SYSFS_ROOT would."""
    def point(fake):
        monkeypatch.setattr(rapl, "rapl_dir", os.path.join(fake.root, "class/powercap/intel-rapl"))
        return rapl.rapl_dir
    return point


def near(got, want_w, seconds, what):
    want = want_w * seconds
    assert abs(got - want) <= 0.02 * want + want_w * LAG_S, f"{what}: {got:.3f}, want {want:.3f}"


def read_stdout(code: str, env_extra=None, timeout=120) -> str:
    env = dict(os.environ, **(env_extra or {}))
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


# ---- examples/check_rapl_nvidia_availability.py ---------------------------------------

CHECK_SCRIPT = """
from deep_learning_power_measure.power_measure import rapl_power, gpu_power, rapl
rapl_available, msg = rapl_power.is_rapl_compatible()
print(msg)
nvidia_available, msg = gpu_power.is_nvidia_compatible()
print(msg)
print("RESULT", rapl_available, nvidia_available)
"""


def test_check_rapl_nvidia_availability_lists_what_the_fake_tree_has(fake_rapl):
    full = fake_rapl("intel-2pkg")
    out = read_stdout(CHECK_SCRIPT, {"WATTMETER_SYSFS_ROOT": full.root, "WATTMETER_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    assert "RAPL available:" in out
    for what in ("RAM", "CPU core", "uncore", "System on Chip"):
        assert f"{what} related energy consumption available" in out
    assert "nvidia NOT available for energy consumption" in out
    assert "RESULT True False" in out

    # a package with a core zone only: no dram, no uncore, no psys
    amd = fake_rapl("amd-1pkg")
    out = read_stdout(CHECK_SCRIPT, {"WATTMETER_SYSFS_ROOT": amd.root})
    assert "RAM related energy consumption NOT available" in out
    assert "CPU core related energy consumption available" in out
    assert "uncore related energy consumption NOT available" in out
    assert "System on Chip related energy consumption NOT available" in out


def test_check_rapl_without_powercap_says_why_and_what_to_do(tmp_path):
    (tmp_path / "class").mkdir()
    out = read_stdout(CHECK_SCRIPT, {"WATTMETER_SYSFS_ROOT": str(tmp_path)})
    assert "RESULT False" in out
    assert "RAPL not usable below " + str(tmp_path) in out
    assert "modprobe" in out  # wattmeter's fix, not a bare "cannot find"


# ---- unit_tests/walk_rapl_dir.py ------------------------------------------------------


def test_walk_rapl_dir_script_gives_every_zone_and_its_energy(fake_rapl, rapl_at):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    rapl_at(fake)
    t0 = time.monotonic()
    first = {}
    for dirpath, dirnames, filenames in rapl._walk_rapl_dir(rapl.rapl_dir):
        if len(dirpath.split(":")) == 1:
            continue
        name, energy_uj, max_energy_range_uj = rapl._get_domain_info(dirpath)
        first[dirpath] = (name, energy_uj)
    time.sleep(1)
    seen = {}
    for dirpath, dirnames, filenames in rapl._walk_rapl_dir(rapl.rapl_dir):
        if len(dirpath.split(":")) == 1:
            continue
        name, energy_uj, max_energy_range_uj = rapl._get_domain_info(dirpath)
        _, energy_uj1 = first[dirpath]
        seen[os.path.basename(dirpath)] = (name, energy_uj - energy_uj1)
    dt = time.monotonic() - t0
    # every zone of intel-rapl (the mmio duplicate lives elsewhere), nested as sysfs nests them
    assert sorted(seen) == sorted(z for z in fake.zone_ids() if not z.startswith("intel-rapl-mmio"))
    for zid, (name, d_uj) in seen.items():
        z = next(z for z in fake.zones() if z["id"] == zid)
        assert name == z["name"]
        assert 0.95 * z["rate_w"] * 1e6 * 1.0 - z["rate_w"] * 1e6 * LAG_S <= d_uj <= z["rate_w"] * 1e6 * (dt + LAG_S)


def test_walk_rapl_dir_without_the_tree_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="No RAPL directory"):
        list(rapl._walk_rapl_dir(str(tmp_path / "class/powercap/intel-rapl")))


# ---- unit_tests/get_cpu_power.py ------------------------------------------------------


def test_get_cpu_power_script_gives_the_known_rates(fake_rapl, rapl_at):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    rapl_at(fake)
    sample = rapl.RAPLSample()
    s1 = sample.take_sample()
    time.sleep(1)
    s2 = sample.take_sample()
    diff = s2 - s1
    cpu_metrics = rapl_power.get_diff_power_draw(diff)
    assert set(cpu_metrics) == set(RATES)
    for k, w in RATES.items():
        near(cpu_metrics[k] * diff.duration, w, diff.duration, k)
    # AIPowerMeter 5be114d's name for it, with that version's keys
    old = rapl_power.get_power(diff)
    assert old["dram_power"] == cpu_metrics["total_dram_power"] and old["cpu_power"] == cpu_metrics["total_cpu_power"]
    # the sample's shape: packages by name, their zones below
    assert sorted(s1.domains) == ["package-0", "package-1", "psys"]
    assert sorted(s1.domains["package-0"].subdomains) == ["core", "dram", "uncore"]
    assert diff.energy("package-0", "dram", unit=rapl.JOULES) == pytest.approx(
        diff.domains["package-0"].subdomains["dram"].values["energy_uj"] / 1e6)
    assert isinstance(rapl.RAPLMonitor.sample(), rapl.RAPLSample)


def test_a_wrapped_counter_counts_every_value_of_its_range():
    a, b = rapl.RAPLDomain(), rapl.RAPLDomain()
    for d, v in ((a, 999_990), (b, 15)):
        d.name, d.id, d.values, d.max_values = "package-0", "intel-rapl:0", {"energy_uj": v}, {"energy_uj": 999_999}
    # 999990 -> 999999 is 9 uJ, -> 0 one more, -> 15 fifteen more
    assert (b - a).values["energy_uj"] == 25


def test_a_machine_without_psys_gives_minus_one_as_aipowermeter(fake_rapl, rapl_at):
    fake = fake_rapl("amd-1pkg", max_range_uj=BIG_RANGE_UJ)
    rapl_at(fake)
    s1 = rapl.RAPLSample.take_sample()
    time.sleep(0.5)
    m = rapl_power.get_diff_power_draw(rapl.RAPLSample.take_sample() - s1)
    assert m["psys_power"] == -1 and "total_dram_power" not in m and "uncore_power" not in m
    assert m["total_cpu_power"] > 0


# ---- unit_tests/cpu_use.py ------------------------------------------------------------


def _cpu_child(q, process_list):
    q.put(rapl_power.get_cpu_uses(process_list, period=1.0))


def test_cpu_use_script_measures_the_cpu_time_os_times_sees():
    process_list = rapl_power.get_processes([os.getpid(), 2 ** 22 + 7])  # the second does not exist
    assert [p.pid for p in process_list] == [os.getpid()]
    q = FORK.Queue()
    before = os.times()
    p = FORK.Process(target=_cpu_child, args=(q, process_list))  # as the script: measured from a child
    p.start()
    n = 0
    while True:  # the script burns CPU until the answer comes
        n += 1
        try:
            cpu_use, absolute_cpu_time_per_pid = q.get(block=False)
            break
        except std_queue.Empty:
            pass
    after = os.times()
    p.join()
    spent = (after.user - before.user) + (after.system - before.system)
    total_time = sum(absolute_cpu_time_per_pid.values())
    total_percent = sum(cpu_use.values())
    assert set(cpu_use) == {os.getpid()} and set(absolute_cpu_time_per_pid) == {os.getpid()}
    # the 1 s window lies inside [before, after]
    assert total_time <= spent + 0.02
    assert total_time >= spent - 0.5, (total_time, spent)
    assert 0 < total_percent <= 1


# ---- unit_tests/mem_use.py ------------------------------------------------------------


def test_mem_use_script_sees_a_known_allocation():
    size = 64 * 1024 * 1024
    child = subprocess.Popen([PY, "-c", f"import sys,time\nb = bytearray({size})\nfor i in range(0, len(b), 4096): b[i] = 1\n"
                              "print('ready', flush=True)\ntime.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        process_list = rapl_power.get_processes([child.pid])
        q = FORK.Queue()
        p = FORK.Process(target=lambda q, pl: q.put(rapl_power.get_mem_uses(pl)), args=(q, process_list))
        p.start()
        mem_pss_per_process, mem_uss_per_process = q.get(timeout=30)
        p.join()
        uss = sum(mem_uss_per_process.values())
        pss = sum(mem_pss_per_process.values())
        assert set(mem_pss_per_process) == {child.pid} == set(mem_uss_per_process)
        assert uss >= size and pss >= uss  # the touched pages are the child's alone
        assert pss < size + 64 * 1024 * 1024  # and the interpreter is not 64 MiB more
        rel = rapl_power.get_relative_mem_use(mem_pss_per_process)
        assert 0 < rel[child.pid] < 1
    finally:
        child.kill()
        child.wait()


# ---- examples/read_json_results.py and print(exp_result) -------------------------------

DOC_CPU_ORDER = ["per_process_mem_use_abs", "per_process_cpu_uses", "per_process_mem_use_percent", "intel_power",
                 "psys_power", "uncore_power", "per_process_cpu_power", "total_cpu_power", "per_process_mem_use_uss"]
DOC_GPU_ORDER = ["nvidia_draw_absolute", "nvidia_attributable_power", "nvidia_mem_use", "nvidia_sm_use",
                 "per_gpu_power_draw", "per_gpu_attributable_power", "per_gpu_estimated_attributable_utilization"]


def _aipm_folder(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    shutil.copy(AIPM / f"{name}_power_metrics.json", d / "power_metrics.json")
    return d


def _listed(out: str, title: str):
    lines = out.split("Available metrics")[-1].splitlines()
    return [x.strip() for x in lines[lines.index(title) + 1].split(",")]


def test_read_json_results_script_prints_summary_and_metrics_in_the_documented_order(tmp_path):
    folder = _aipm_folder(tmp_path, "legacy_2gpu")
    out = read_stdout(f"""
from deep_learning_power_measure.power_measure import experiment, parsers
driver = parsers.JsonParser({str(folder)!r})
exp_result = experiment.ExpResults(driver)
exp_result.print()
print()
print(exp_result)
""")
    assert "EXPERIMENT SUMMARY" in out and "Available metrics" in out
    cpu, gpu = _listed(out, "CPU"), _listed(out, "GPU")
    doc_cpu = [m for m in DOC_CPU_ORDER if m in cpu]
    assert cpu[:len(doc_cpu)] == doc_cpu
    assert gpu[:len(DOC_GPU_ORDER)] == DOC_GPU_ORDER


def test_json_parser_creates_the_folder_and_its_metadata_as_aipowermeter(tmp_path):
    folder = tmp_path / "new" / "exp"
    parsers.JsonParser(str(folder), meta_data="resnet on cifar")
    md = json.loads((folder / "metadata.json").read_text())
    assert md["description"] == "resnet on cifar"
    assert abs(datetime.datetime.fromisoformat(md["date"]).timestamp() - time.time()) < 60
    # an existing description is kept, as AIPowerMeter's
    parsers.JsonParser(str(folder), meta_data="other")
    assert json.loads((folder / "metadata.json").read_text())["description"] == "resnet on cifar"


def _nvml_file(path: Path):
    """An NVML-generation power_metrics.json (AIPowerMeter fc099d1's fields), 3 samples, 2 GPUs."""
    t0 = datetime.datetime(2024, 3, 1, 12, 0, 0)
    rows = []
    for i, (w0, w1) in enumerate([(100.0, 50.0), (120.0, 60.0), (140.0, 70.0)]):
        rows.append({"date": str(t0 + datetime.timedelta(seconds=2 * i)), "metrics": {
            "cpu": {"per_process_cpu_uses": {"7": 0.5}},
            "gpu": {"nvidia_power": w0 + w1, "nvidia_memory": 3e9, "nvidia_use_rate": 40.0,
                    "per_gpu_nvidia_power": {"0": w0, "1": w1}, "per_gpu_nvidia_use_rate": {"0": 50, "1": 30},
                    "per_gpu_nvidia_memory": {"0": 2e9, "1": 1e9}}}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_print_fills_attributable_usage_per_gpu_on_nvml_recordings(tmp_path, capsys):
    _nvml_file(tmp_path / "power_metrics.json")
    experiment.ExpResults(parsers.JsonParser(str(tmp_path))).print()
    out = capsys.readouterr().out
    block = [x.strip() for x in out.split("Attributable usage per GPU")[1].strip().splitlines()]
    # trapezoids over 4 s: gpu0 (100+120)/2*2 + (120+140)/2*2 = 480 J; gpu1 240 J
    assert block[0].startswith("gpu: 0: 480.000 joules") and block[1].startswith("gpu: 1: 240.000 joules")
    assert "whole GPU" in block[0]


# ---- examples/plot2curves_json_results.py ---------------------------------------------


def test_plot2curves_script_draws_two_axes(tmp_path):
    pytest.importorskip("matplotlib")
    folder = _aipm_folder(tmp_path, "legacy_2gpu")
    exp_result = experiment.ExpResults(parsers.JsonParser(str(folder)))
    fig = exp_result.display_2_curves("nvidia_sm_use", "nvidia_draw_absolute", saveto=str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 1  # two GPUs' SM use; the total draw
    assert right.get_ylabel() == "nvidia_draw_absolute"
    with pytest.raises(ValueError, match="no metric 'nvidia_power'.*it has: .*intel_power"):
        exp_result.display_2_curves("nvidia_power", "intel_power")


def test_the_script_itself_shows_the_plot_with_a_non_interactive_backend(tmp_path):
    pytest.importorskip("matplotlib")
    folder = _aipm_folder(tmp_path, "legacy_2gpu")
    out = read_stdout(f"""
from deep_learning_power_measure.power_measure import experiment, parsers
exp_result = experiment.ExpResults(parsers.JsonParser({str(folder)!r}))
print(exp_result)
exp_result.display_2_curves('nvidia_sm_use','nvidia_draw_absolute')
print("SHOWN")
""", {"MPLBACKEND": "Agg"})
    assert "SHOWN" in out


# ---- the recorder: (p, q) behave as AIPowerMeter's process and queue ------------------


def test_p_is_a_process_and_q_answers_once_the_recording_is_complete(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    exp = experiment.Experiment(parsers.JsonParser(str(tmp_path / "o")), sysfs_root=fake.root)
    p, q = exp.measure_yourself(period=0.2)
    assert p.pid != os.getpid() and p.is_alive() and p.exitcode is None
    assert os.getppid() != p.pid and int(open(f"/proc/{p.pid}/stat").read().rpartition(")")[2].split()[1]) == os.getpid()
    for name in ("kill", "terminate", "close", "join", "is_alive"):
        assert callable(getattr(p, name))
    time.sleep(0.6)
    q.put(experiment.STOP_MESSAGE)
    assert q.get(timeout=30) == (None, None)  # processify's (result, error)
    rec = tmp_path / "o" / "wattmeter-001"
    assert json.loads((rec / "meta.json").read_text())["complete"] is True  # complete when q answers
    p.join(10)
    assert p.exitcode == 0
    p.close()


def test_terminate_completes_the_recording_and_ends_by_sigterm(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    exp = experiment.Experiment(parsers.JsonParser(str(tmp_path / "o")), sysfs_root=fake.root)
    p, q = exp.measure_yourself(period=0.2)
    time.sleep(0.5)
    p.terminate()
    p.join(30)
    assert p.exitcode == -signal.SIGTERM
    assert json.loads((tmp_path / "o" / "wattmeter-001" / "meta.json").read_text())["complete"] is True


def test_results_read_right_after_stop_without_join_are_complete(fake_rapl, tmp_path):
    # examples/exp_matmul.py: q.put(STOP_MESSAGE), then JsonParser + ExpResults at once
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    exp = experiment.Experiment(parsers.JsonParser(str(tmp_path / "o")), sysfs_root=fake.root)
    t0 = time.monotonic()
    p, q = exp.measure_yourself(period=0.2)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pass
    q.put(experiment.STOP_MESSAGE)
    t1 = time.monotonic()
    r = experiment.ExpResults(parsers.JsonParser(str(tmp_path / "o")))
    assert not p.is_alive()
    d, _, _ = r.get_duration()
    assert d >= 0.9 and d <= time.monotonic() - t0
    near(r.total_("intel_power"), RATES["intel_power"], d, "intel_power")
    assert t1 - t0 >= 1.0


def test_a_recorder_whose_experiment_was_killed_stops(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    code = f"""
import os, sys
from deep_learning_power_measure.power_measure import experiment, parsers
exp = experiment.Experiment(parsers.JsonParser({str(tmp_path / 'o')!r}), sysfs_root={fake.root!r})
p, q = exp.measure_yourself(period=0.2)
print(p.pid, flush=True)
os.kill(os.getpid(), 9)
"""
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9
    rec_pid = int(proc.stdout.split()[0])
    meta = tmp_path / "o" / "wattmeter-001" / "meta.json"
    end = time.monotonic() + 10
    while time.monotonic() < end and not json.loads(meta.read_text()).get("complete"):
        time.sleep(0.1)
    assert json.loads(meta.read_text())["complete"] is True

    def state():
        try:
            with open(f"/proc/{rec_pid}/stat") as f:
                return f.read().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return "gone"

    end = time.monotonic() + 10  # its files close (our pipe's EOF) a moment before it is a zombie
    while time.monotonic() < end and state() not in ("Z", "X", "gone"):
        time.sleep(0.05)
    assert state() in ("Z", "X", "gone")


# ---- modelled energy never under RAPL names --------------------------------------------


def test_without_rapl_intel_power_is_none_and_the_model_says_its_name(tmp_path, capsys):
    (tmp_path / "sys" / "class").mkdir(parents=True)
    with pytest.warns(RuntimeWarning, match="RAPL not available"):
        exp = experiment.Experiment(parsers.JsonParser(str(tmp_path / "o")), sysfs_root=str(tmp_path / "sys"))
    p, q = exp.measure_yourself(period=0.2)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pass
    q.put(experiment.STOP_MESSAGE)
    p.join(30)
    r = experiment.ExpResults(parsers.JsonParser(str(tmp_path / "o")))
    assert r.total_("intel_power") is None and r.total_("rel_intel_power") is None  # as AIPowerMeter without RAPL
    assert r.total_("modeled_cpu_power") > 0 and r.total_("rel_modeled_cpu_power") > 0
    assert r.get_summary()["cpu"]["total_intel_power"] is None
    r.print()
    out = capsys.readouterr().out
    assert "total intel power:  not available" in out and "MODELED cpu energy" in out


def test_cont_over_measured_and_modelled_segments_does_not_add_them(fake_rapl, tmp_path, capsys):
    fake = fake_rapl("intel-2pkg", max_range_uj=BIG_RANGE_UJ)
    folder = str(tmp_path / "o")
    durations = []
    for i, root in enumerate([fake.root, str(tmp_path / "nosys")]):
        os.makedirs(os.path.join(root, "class"), exist_ok=True)
        with _nothing():  # the second segment warns: no RAPL there
            exp = experiment.Experiment(parsers.JsonParser(folder), cont=(i > 0), sysfs_root=root)
        p, q = exp.measure_yourself(period=0.2)
        time.sleep(0.8)
        q.put(experiment.STOP_MESSAGE)
        p.join(30)
    r = experiment.ExpResults(parsers.JsonParser(folder))
    segs = parsers.JsonParser(folder).segments()
    assert len(segs) == 2
    d_rapl = r.get_duration_metric("intel_power")[0]
    d_all = r.get_duration()[0]
    assert d_rapl < 0.7 * d_all  # intel_power covers the measured segment only
    near(r.total_("intel_power"), RATES["intel_power"], d_rapl, "RAPL segment only")
    assert r.total_("modeled_cpu_power") > 0
    r.print()
    out = capsys.readouterr().out
    assert "the rest is modelled, below, and not added" in out


class _nothing:
    def __enter__(self):
        import warnings
        self._c = warnings.catch_warnings()
        self._c.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        self._c.__exit__(*a)


# ---- the module's other public functions -----------------------------------------------


def test_processify_runs_the_method_in_a_process_and_answers_on_the_queue():
    class Job:
        @experiment.processify
        def work(self, queue, x):
            told = queue.get(timeout=10)  # the PID the wrapper puts, as measure_yourself reads it
            return (os.getpid(), told, x * 2)

    p, q = Job().work(21)
    p.join(10)
    (pid, told, val), err = q.get(timeout=10)
    assert pid == told == p.pid != os.getpid()
    assert (val, err) == (42, None)
    assert p.exitcode == 0


def test_get_pid_list_takes_the_parent_tree_minus_the_recorder():
    child = subprocess.Popen([PY, "-c", busy_code(5)])
    try:
        time.sleep(0.2)
        pids = experiment.get_pid_list(child.pid, parent_pid=os.getpid())
        assert os.getpid() in pids and child.pid not in pids
        assert child.pid in experiment.get_pid_list(os.getpid() + 10 ** 6, parent_pid=os.getpid())
        everyone = experiment.get_pid_list_all()
        assert any(child.pid in v for v in everyone.values())
        assert all("_" in k for k in everyone)
    finally:
        child.kill()
        child.wait()


def test_interpolate_cumsum_usage_duration_and_segments(tmp_path):
    m1 = [{"date": 0.0, "value": 0.0}, {"date": 2.0, "value": 4.0}]
    m2 = [{"date": 1.0, "value": 10.0}, {"date": 3.0, "value": 30.0}]
    a, b = experiment.interpolate(m1, m2)
    assert [x["date"] for x in a] == [0.0, 1.0, 2.0, 3.0] == [x["date"] for x in b]
    assert [x["value"] for x in a] == [0.0, 2.0, 4.0, 4.0]  # held after its end, as numpy.interp
    assert [x["value"] for x in b] == [10.0, 10.0, 20.0, 30.0]
    assert list(experiment.cumsum(m2)) == [10.0, 40.0]
    use = [[{"date": 0.0, "value": 0.0}, {"date": 1.0, "value": 0.5}, {"date": 3.0, "value": 0.0},
            {"date": 4.0, "value": 0.2}]]
    assert experiment.get_usage_duration(use) == 2.0
    assert experiment.get_usage_duration({"0": use}) == {"0": 2.0}
    folder = _aipm_folder(tmp_path, "cpu_segments")
    r = experiment.ExpResults(parsers.JsonParser(str(folder)))
    flat = [pt for seg in r.get_curve("intel_power") for pt in seg]
    assert r.split_into_segments(flat) == r.get_curve("intel_power")
    assert len(r.get_curve("intel_power")) == len(r.segments) + 1 > 1
    legacy = experiment.ExpResults(parsers.JsonParser(str(_aipm_folder(tmp_path, "legacy_2gpu"))))
    dur = legacy.get_gpu_usage_duration()
    assert set(dur) == {"0", "1"} and all(0 <= v <= legacy.get_duration()[0] for v in dur.values())


def test_gpu_power_functions_exist_with_their_shapes():
    s1 = {"time": 0.0, "nvidia_power": 100.0, "per_gpu_nvidia_power": {0: 60.0, 1: 40.0}, "nvidia_memory": 10,
          "per_gpu_nvidia_memory": {0: 6, 1: 4}}
    s2 = {"time": 2.0, "nvidia_power": 500.0, "per_gpu_nvidia_power": {0: 360.0, 1: 140.0}, "nvidia_memory": 30,
          "per_gpu_nvidia_memory": {0: 16, 1: 14}}
    d = gpu_power.get_diff_gpu_sample(s1, s2)
    assert d["nvidia_power"] == 200.0 and d["per_gpu_nvidia_power"] == {0: 150.0, 1: 50.0}
    assert d["nvidia_memory"] == 20 and d["per_gpu_nvidia_memory"] == {0: 11, 1: 9}
    with pytest.raises(NotImplementedError, match="NVML directly"):
        gpu_power.get_nvidia_gpu_power()


def test_main_is_the_package_entry_point():
    import deep_learning_power_measure

    assert callable(deep_learning_power_measure.main)
    p = subprocess.run([PY, "-m", "deep_learning_power_measure", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--cmd" in p.stdout


def test_prometheus_client_has_gauges_an_app_and_run():
    c = prometheus_client.PrometheusClient(port=0)
    assert set(c.gauges) == {"power_draw_cpu", "intel_power", "mem_used_cpu", "mem_used_gpu", "power_draw_gpu"}
    c.save_power_metrics({"cpu": {"total_cpu_power": 12.5, "intel_power": 40.0,
                                  "per_process_mem_use_abs": {"1": 100, "2": 50}},
                          "gpu": {"nvidia_draw_absolute": 250.0, "per_gpu_attributable_mem_use": {"0": {"9": 7}}}})
    assert c.gauges["intel_power"]._value.get() == 40.0 and c.gauges["mem_used_cpu"].get() == 150
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    end = time.monotonic() + 10
    while c._server is None and time.monotonic() < end:
        time.sleep(0.02)
    host, port = c._server.server_address[:2]
    assert host == "127.0.0.1"
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "power_draw_gpu 250.0" in body and "mem_used_gpu 7.0" in body
    c.shutdown()
    t.join(10)
    assert not t.is_alive()


# ---- installing beside AIPowerMeter ----------------------------------------------------


def _fake_aipowermeter_dist(site: Path):
    info = site / "deep_learning_power_measure-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deep_learning_power_measure\nVersion: 1.0\n")
    (info / "RECORD").write_text("deep_learning_power_measure/__init__.py,,\n")
    (info / "top_level.txt").write_text("deep_learning_power_measure\n")


def test_aipowermeter_installed_elsewhere_is_detected_at_import(tmp_path):
    _fake_aipowermeter_dist(tmp_path / "other-site")
    p = subprocess.run([PY, "-c", "import deep_learning_power_measure"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(tmp_path / "other-site")))
    assert p.returncode == 0
    assert "AIPowerMeter (deep_learning_power_measure 1.0) is also installed" in p.stderr
    assert "pip uninstall deep_learning_power_measure" in p.stderr and "reinstall wattmeter" in p.stderr


def test_aipowermeter_installed_over_the_same_folder_is_detected_at_import(tmp_path):
    import deep_learning_power_measure

    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(deep_learning_power_measure.__file__), site / "deep_learning_power_measure")
    _fake_aipowermeter_dist(site)
    p = subprocess.run([PY, "-c", "import deep_learning_power_measure as d; print(d.__file__)"], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(site)))
    assert p.returncode == 0 and p.stdout.startswith(str(site))
    assert "their files overwrite each other there" in p.stderr
    clean = subprocess.run([PY, "-W", "error::RuntimeWarning", "-c", "import deep_learning_power_measure"],
                           capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr  # no warning where AIPowerMeter is not installed


def test_the_drop_in_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy")
    import deep_learning_power_measure

    assert deep_learning_power_measure.__file__  # the installed package, checked from tmp_path
    p = subprocess.run([PY, "-m", "mypy", "--strict", "--ignore-missing-imports", "--cache-dir",
                        str(tmp_path / ".mypy_cache"), "-p", "deep_learning_power_measure"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr


def _mock_nvml() -> str:
    from conftest import REPO

    for c in [os.environ.get("WM_MOCK_NVML", "")] + [str(REPO / d / "tests" / "c" / "libmock_nvml.so")
                                                     for d in ("build-test", "build")]:
        if c and os.path.isfile(c):
            return c
    return ""


@pytest.mark.skipif(not _mock_nvml(), reason="mock libnvidia-ml not built: meson compile -C build-test "
                    "(or set WM_MOCK_NVML)")
def test_gpu_test_script_gives_each_gpus_power_from_wattmeters_nvml_reader(tmp_path):
    # unit_tests/gpu_test.py: two samples 2 s apart and their difference
    (tmp_path / "scenario").write_text("gpus=2\ngpu0.watts=250\ngpu1.watts=100\n")
    out = read_stdout("""
import json, time
from deep_learning_power_measure.power_measure import gpu_power
ok, msg = gpu_power.is_nvidia_compatible()
gpu1 = gpu_power.get_gpu_sample()
time.sleep(2)
gpu2 = gpu_power.get_gpu_sample()
diff = gpu_power.get_diff_gpu_sample(gpu1, gpu2)
print(json.dumps([ok, msg, diff]))
""", {"WATTMETER_NVML_LIB": _mock_nvml(), "WM_MOCK_NVML_SCENARIO": str(tmp_path / "scenario")})
    ok, msg, diff = json.loads(out.splitlines()[-1])
    assert ok and msg == "GPU power will be measured with nvidia"
    # the meter's samples are 0.05 s apart: each end of the 2 s window may be off by one
    for gpu, w in (("0", 250.0), ("1", 100.0)):
        assert abs(diff["per_gpu_nvidia_power"][gpu] - w) <= 0.02 * w + w * 0.1 / 2, diff
    assert abs(diff["nvidia_power"] - 350.0) <= 0.02 * 350 + 350 * 0.1 / 2


def test_a_recording_that_cannot_start_warns_and_q_returns_the_error(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg")
    gone = subprocess.Popen([PY, "-c", "pass"])
    gone.wait()  # a PID that no longer runs
    exp = experiment.Experiment(parsers.JsonParser(str(tmp_path / "o")), sysfs_root=fake.root)
    with pytest.warns(RuntimeWarning, match="UNRECORDED"):
        p, q = exp.measure_from_pid_list([gone.pid], period=0.2)
    ret, err = q.get(timeout=30)
    assert ret is None and issubclass(err[0], Exception) and str(gone.pid) in str(err[1])
    p.join(10)
    assert p.exitcode == 1


def test_cont_after_an_aipowermeter_file_keeps_its_rapl_energy_apart_from_the_model(tmp_path, capsys):
    # the case: examples/measure_power (RAPL, AIPowerMeter's file) then
    # exp_matmul.py with cont=True on a machine without RAPL
    folder = _aipm_folder(tmp_path, "cpu_segments")
    before = experiment.ExpResults(parsers.JsonParser(str(folder))).total_("intel_power")
    (tmp_path / "nosys" / "class").mkdir(parents=True)
    with _nothing():
        exp = experiment.Experiment(parsers.JsonParser(str(folder)), cont=True, sysfs_root=str(tmp_path / "nosys"))
    p, q = exp.measure_yourself(period=0.2)
    time.sleep(0.8)
    q.put(experiment.STOP_MESSAGE)
    p.join(30)
    r = experiment.ExpResults(parsers.JsonParser(str(folder)))
    assert r.total_("intel_power") == before  # not a joule of the model added
    assert r.total_("modeled_cpu_power") > 0
    r.print()
    assert "and not added" in capsys.readouterr().out
