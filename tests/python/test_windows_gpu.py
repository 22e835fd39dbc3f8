"""A GPU whose energy counter updates every 100 ms (the mock libnvidia-ml's
update_ms, measured by the probe) cannot resolve a 10 ms window: the window
gets an uncertainty of one update interval's energy (power x 0.1 s) and a
note, never a silent 0 J; a 0.6 s window needs none and is power x duration
to within one update step."""

from __future__ import annotations

import os
import time

import pytest

import wattmeter
from test_gpu_nvml import MOCK, needs_mock


@needs_mock
def test_short_gpu_window_gets_one_update_interval_of_uncertainty(tmp_path, monkeypatch):
    sc = tmp_path / "scenario"
    sc.write_text("gpus=1\ngpu0.watts=200\ngpu0.update_ms=100\n")
    monkeypatch.setenv("WM_MOCK_NVML_SCENARIO", str(sc))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("WATTMETER_CONTROL", raising=False)
    with wattmeter.Meter(str(tmp_path / "rec"), 0.1, nvml_lib=MOCK) as m:
        time.sleep(0.35)  # a few ticks: the GPU's power is known
        with m.window("tiny"):
            time.sleep(0.01)
        with m.window("long"):
            time.sleep(0.6)
    rows = {r["name"]: r for r in m.results.windows(frame=False)}
    tiny, long_ = rows["tiny"], rows["long"]
    assert tiny["duration_s"] < 0.05
    # 200 W x the probe's measured interval (~0.1 s; polled, so a little more)
    assert tiny["uncertainty_j.gpu0"] == pytest.approx(200 * 0.1, rel=0.3)
    assert any("gpu0" in n and "update" in n for n in tiny["notes"])
    # the counter moved by 0 or one 20 J step: the truth (2 J) lies within the uncertainty
    assert abs(tiny["energy_j.gpu0"] - 200 * tiny["duration_s"]) <= tiny["uncertainty_j.gpu0"] + 1e-6
    assert "uncertainty_j.gpu0" not in long_
    assert abs(long_["energy_j.gpu0"] - 200 * long_["duration_s"]) <= 200 * 0.1 + 1.0
