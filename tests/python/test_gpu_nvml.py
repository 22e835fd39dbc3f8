"""NVIDIA GPUs through NVML, end to end: the real `wattmeter` command (and the
Python Meter) with the mock libnvidia-ml that meson builds for the tests
(tests/mock_nvml/mock_nvml.c), loaded with --nvml-lib as a real one would be.

The truth is the mock's scenario: a GPU at W watts for t seconds spends
W x t joules; a process at 60% SM beside one at 20% gets 3/4 of the GPU.
No GPU machine is needed; without any NVML library every command must work
as before and `wattmeter sensors` must say why GPUs are absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FAST, PY, REPO, WATTMETER, read_meta, report_json, run_wm


def find_mock() -> str:
    """The mock library meson built: $WM_MOCK_NVML, else the build folders
    scripts/test-all.sh and a plain `meson setup build` use."""
    cands = [os.environ.get("WM_MOCK_NVML", "")]
    cands += [str(REPO / d / "tests" / "c" / "libmock_nvml.so") for d in ("build-test", "build")]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    return ""


MOCK = find_mock()
needs_mock = pytest.mark.skipif(not MOCK, reason="mock libnvidia-ml not built: meson setup build-test && "
                                "meson compile -C build-test (or set WM_MOCK_NVML)")


def scenario(tmp_path: Path, text: str) -> dict:
    """Writes a mock scenario; returns the environment that plays it."""
    f = tmp_path / "scenario"
    f.write_text(text)
    env = dict(os.environ)
    env["WM_MOCK_NVML_SCENARIO"] = str(f)
    env.pop("WATTMETER_NVML_LIB", None)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


@needs_mock
def test_run_reports_the_scenario_gpu_energy_within_1pct(tmp_path):
    env = scenario(tmp_path, "gpus=2\ngpu0.name=NVIDIA H200\ngpu0.watts=250\ngpu1.watts=90\n"
                             "gpu1.energy_counter=0\n")
    env["CUDA_VISIBLE_DEVICES"] = "1"
    out = tmp_path / "rec"
    t0 = time.monotonic()
    p = run_wm(["run", "--nvml-lib", MOCK, "-o", str(out), *FAST, "--", PY, "-c", "import time; time.sleep(1.5)"],
               env=env)
    wall = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    s = report_json(out)
    d = s["duration_s"]
    # the recording spans the command (1.5 s) and less than wattmeter's whole life
    assert 1.5 <= d <= wall
    assert s["energy_j"]["gpu0"] == pytest.approx(250.0 * d, rel=0.01)
    assert s["energy_j"]["gpu1"] == pytest.approx(90.0 * d, rel=0.01)
    assert s["energy_j"]["gpu"] == pytest.approx(340.0 * d, rel=0.01)
    # the run uses GPU 1 only (CUDA_VISIBLE_DEVICES=1); the machine has both
    assert s["energy_j"]["gpu_run"] == pytest.approx(90.0 * d, rel=0.01)
    assert s["method"]["gpu"] == "measured"
    gpus = {g["device"]: g for g in s["gpus"]}
    assert gpus["gpu0"]["name"] == "NVIDIA H200"
    # "source" as in meta.json and per_device(): the source; how, apart
    assert gpus["gpu0"]["source"] == gpus["gpu1"]["source"] == "nvml"
    assert gpus["gpu0"]["source_detail"] == "energy-counter"
    assert gpus["gpu1"]["source_detail"] == "power-integrated-instant"
    assert gpus["gpu0"]["used_by_run"] is False and gpus["gpu1"]["used_by_run"] is True
    assert gpus["gpu0"]["uuid"].startswith("GPU-")
    # nothing of ours ran on the GPUs: nothing attributed, all of it said so
    assert s["energy_j"]["gpu_attributed"] == 0
    assert s["unattributed_j"]["gpu"] == pytest.approx(s["energy_j"]["gpu"], abs=1e-6)
    meta = read_meta(out)
    nv = [x for x in meta["sensors"] if x["name"] == "nvml"][0]
    assert nv["state"] == "ok"
    assert meta["nvml"]["driver_version"] == "550.54.15"
    assert "gpu0" in p.stderr and "energy-counter" in p.stderr
    # samples carry the GPU gauges
    last = json.loads((out / "samples.jsonl").read_text().splitlines()[-1])
    assert last["gauges"]["gpu0"]["power_instant_w"] == pytest.approx(250.0)


@needs_mock
def test_shared_gpu_attributed_share_matches_sm_shares(tmp_path):
    # A process of ours at 60% SM and a foreign one at 20%, both on GPU 0 from
    # the start: ours gets 60 / (60 + 20) = 3/4 of the GPU's energy.
    pidfile = tmp_path / "pid"
    worker = subprocess.Popen([PY, "-c", "import time; time.sleep(30)"])
    try:
        pidfile.write_text(str(worker.pid))
        env = scenario(tmp_path, f"util_period_s=0.02\ngpu0.watts=300\ngpu0.proc=@{pidfile}:60:2048\n"
                                 "gpu0.proc=4000001:20:512\n")
        out = tmp_path / "rec"
        p = run_wm(["run", "--nvml-lib", MOCK, "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
                    "--pid", str(worker.pid), "--", PY, "-c", "import time; time.sleep(2)"], env=env)
        assert p.returncode == 0, p.stderr
    finally:
        worker.kill()
        worker.wait()
    s = report_json(out)
    total = s["energy_j"]["gpu0"]
    assert total == pytest.approx(300.0 * s["duration_s"], rel=0.01)
    assert s["energy_j"]["gpu0_attributed"] / total == pytest.approx(0.75, abs=0.02)
    assert s["processes"][str(worker.pid)]["energy_j"]["gpu0"] == pytest.approx(
        s["energy_j"]["gpu0_attributed"], rel=1e-6)
    assert s["energy_j"]["gpu0_attributed"] + s["unattributed_j"]["gpu0"] == pytest.approx(total, abs=1e-3)
    # the foreign pid is not in this /proc: said, not silently dropped
    warnings = "\n".join(read_meta(out).get("warnings", []))
    assert "4000001" in warnings and "--gpu-exclusive" in warnings


@needs_mock
def test_gpu_exclusive_bills_the_run_gpus_whole(tmp_path):
    env = scenario(tmp_path, "gpus=2\ngpu0.watts=200\ngpu1.watts=50\ngpu0.proc=4000002:90:100\n")
    env["CUDA_VISIBLE_DEVICES"] = "0"
    out = tmp_path / "rec"
    p = run_wm(["run", "--nvml-lib", MOCK, "--gpu-exclusive", "-o", str(out), *FAST, "--", PY, "-c",
                "import time; time.sleep(1)"], env=env)
    assert p.returncode == 0, p.stderr
    s = report_json(out)
    assert s["energy_j"]["gpu0_attributed"] == pytest.approx(s["energy_j"]["gpu0"], rel=0.01)
    assert s["energy_j"]["gpu1_attributed"] == 0  # not the run's GPU


def _sysfs_with_pci(root, vendors):
    """A sysfs root whose bus/pci/devices lists devices of the given vendors."""
    for i, v in enumerate(vendors):
        d = root / "bus" / "pci" / "devices" / f"0000:0{i}:00.0"
        d.mkdir(parents=True)
        (d / "vendor").write_text(v + "\n")
    return root


def test_without_nvml_every_command_works_and_sensors_says_why(tmp_path):
    env = dict(os.environ)
    env.pop("WATTMETER_NVML_LIB", None)
    # An NVIDIA device on the bus but no library: the fix says what to install.
    gpu_box = _sysfs_with_pci(tmp_path / "gpu-box", ["0x8086", "0x10de"])
    p = run_wm(["sensors", "--sysfs-root", str(gpu_box)], env=env)
    assert p.returncode == 0, p.stderr
    if "NVIDIA GPUs (NVML" in p.stdout:
        pytest.skip("a real NVIDIA driver is installed here")
    line = [x for x in p.stdout.splitlines() if x.startswith("nvml")][0]
    assert "absent" in line and "libnvidia-ml.so.1" in line
    assert "install the NVIDIA driver" in p.stdout and "--nvml-lib" in p.stdout

    # No NVIDIA device and no library: absent, with nothing to fix, and the
    # run's summary does not repeat it (the modelled CPU's note stays).
    cpu_box = _sysfs_with_pci(tmp_path / "cpu-box", ["0x8086", "0x1af4"])
    p = run_wm(["sensors", "--sysfs-root", str(cpu_box)], env=env)
    line = [x for x in p.stdout.splitlines() if x.startswith("nvml")][0]
    assert "absent" in line and "no NVIDIA GPU" in line
    assert "install the NVIDIA driver" not in p.stdout
    out = tmp_path / "rec"
    p = run_wm(["run", "-o", str(out), "--sysfs-root", str(cpu_box), *FAST, "--", PY, "-c", "print('ok')"],
               env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ok\n"
    assert "note: rapl-powercap absent" in p.stderr and "note: nvml" not in p.stderr
    s = report_json(out)
    assert "gpu" not in s["energy_j"] and "gpus" not in s
    p = run_wm(["sensors", "--no-gpu", "--json"], env=env)
    nv = [x for x in json.loads(p.stdout)["sensors"] if x["name"] == "nvml"][0]
    assert nv["detail"] == "turned off (--no-gpu)"


def test_a_missing_nvml_lib_is_an_error_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = run_wm(["run", "--nvml-lib", str(tmp_path / "nope.so"), "-o", str(tmp_path / "rec"), "--", PY, "-c",
                f"open({str(marker)!r}, 'w')"])
    assert p.returncode == 125
    assert "--nvml-lib" in p.stderr and "nope.so" in p.stderr
    assert not marker.exists()


@needs_mock
def test_sensors_lists_the_gpus(tmp_path):
    env = scenario(tmp_path, "gpus=2\ngpu1.name=NVIDIA A100-SXM4-80GB\ngpu1.mig=1\n")
    p = run_wm(["sensors", "--nvml-lib", MOCK], env=env)
    assert p.returncode == 0, p.stderr
    assert "NVIDIA A100-SXM4-80GB" in p.stdout and "enabled" in p.stdout
    p = run_wm(["sensors", "--nvml-lib", MOCK, "--json"], env=env)
    j = json.loads(p.stdout)
    assert [g["mig_mode"] for g in j["nvml"]["gpus"]] == ["disabled", "enabled"]


@needs_mock
def test_python_meter_with_the_mock(tmp_path):
    import wattmeter

    env = scenario(tmp_path, "gpu0.watts=120\n")
    os.environ["WM_MOCK_NVML_SCENARIO"] = env["WM_MOCK_NVML_SCENARIO"]
    try:
        with wattmeter.Meter(str(tmp_path / "rec"), period=0.05, nvml_lib=MOCK) as m:
            time.sleep(0.8)
        r = m.results
    finally:
        del os.environ["WM_MOCK_NVML_SCENARIO"]
    assert r is not None
    assert r.energy_j["gpu0"] == pytest.approx(120.0 * r.duration_s, rel=0.01)
    assert r.gpu_info[0]["source"] == r.per_gpu()["gpu0"]["source"] == "nvml"
    assert r.gpu_info[0]["source_detail"] == r.per_gpu()["gpu0"]["source_detail"] == "energy-counter"
    assert r.gpus == ["gpu0"]
    assert any(x["name"] == "nvml" and x["detail"] == "turned off (--no-gpu)"
               for x in wattmeter.sensors(no_gpu=True)["sensors"])


@needs_mock
def test_default_search_finds_libnvidia_ml_so_1(tmp_path):
    # No --nvml-lib: wattmeter dlopens "libnvidia-ml.so.1" through the usual
    # search path, here a folder on LD_LIBRARY_PATH holding the mock under
    # that name (as the driver installs it).
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libnvidia-ml.so.1").symlink_to(MOCK)
    env = scenario(tmp_path, "gpus=1\ngpu0.name=NVIDIA L4\n")
    env["LD_LIBRARY_PATH"] = str(libdir)
    p = run_wm(["sensors", "--json"], env=env)
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["nvml"]["library"] == "libnvidia-ml.so.1"
    assert j["nvml"]["gpus"][0]["name"] == "NVIDIA L4"
    # and WATTMETER_NVML_LIB names another library explicitly
    env.pop("LD_LIBRARY_PATH")
    env["WATTMETER_NVML_LIB"] = MOCK
    j = json.loads(run_wm(["sensors", "--json"], env=env).stdout)
    assert j["nvml"]["library"] == MOCK


@needs_mock
def test_gpu_lost_mid_run_leaves_a_gap_and_the_run_goes_on(tmp_path):
    env = scenario(tmp_path, "gpus=2\ngpu0.watts=200\ngpu0.lost_at_s=0.6\ngpu1.watts=50\n")
    out = tmp_path / "rec"
    p = run_wm(["run", "--nvml-lib", MOCK, "-o", str(out), *FAST, "--", PY, "-c", "import time; time.sleep(1.5)"],
               env=env)
    assert p.returncode == 0, p.stderr
    s = report_json(out)
    # gpu1 is whole; gpu0 stops counting when lost (0.6 s after NVML's init,
    # which precedes the recording's start by the probe's few milliseconds)
    assert s["energy_j"]["gpu1"] == pytest.approx(50.0 * s["duration_s"], rel=0.01)
    assert 200.0 * 0.4 < s["energy_j"]["gpu0"] <= 200.0 * 0.6 * 1.01
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert any("gpu0" in x.get("gaps", []) for x in lines[-3:]), "lost GPU not marked as a gap"


@needs_mock
def test_gpu_paths_under_valgrind(tmp_path):
    """`run` and `sensors` with GPUs (the mock: counter, integrated power,
    per-process shares, a lost GPU) under valgrind: no invalid access, no
    uninitialised value, nothing definitely lost."""
    import shutil

    from test_valgrind import vg

    if not shutil.which("valgrind"):
        pytest.skip("valgrind not installed")
    env = scenario(tmp_path, "gpus=3\ngpu1.energy_counter=0\ngpu2.lost_at_s=0.3\n"
                             "gpu0.proc=self:50:10\ngpu0.proc=4000004:50:10\nutil_period_s=0.02\n")
    os.environ["WM_MOCK_NVML_SCENARIO"] = env["WM_MOCK_NVML_SCENARIO"]
    try:
        p = vg(["run", "--nvml-lib", MOCK, "-o", str(tmp_path / "rec"), "--period", "0.05", "--proc-period", "0.1",
                "--", "sleep", "0.6"], tmp_path, "gpurun")
        assert p.returncode == 0, p.stderr
        p = vg(["sensors", "--nvml-lib", MOCK], tmp_path, "gpusensors")
        assert p.returncode == 0, p.stderr
    finally:
        del os.environ["WM_MOCK_NVML_SCENARIO"]
