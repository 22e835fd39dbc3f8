"""The Hugging Face Trainer callback (issue 17 item 6) with the real
transformers and CPU torch from PyPI: a tiny BERT built from a config (random
weights, nothing downloaded) trains on the fake RAPL tree; every step, epoch
and evaluation is a window of the recording, each step's energy is the fake
tree's rate x the step's own duration, and the Trainer's logs carry J/step,
J/sample and J/token."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import wattmeter  # noqa: E402
from test_windows import FIXTURE_STEP_S, check_energy  # noqa: E402


class _FakeProc:
    """The fake tree's writer in its own process: training holds this
    process's GIL for milliseconds, which would make an in-process writer's
    counters stale (its thread waits for the GIL), not the meter."""

    def __init__(self, root):
        import json
        import subprocess
        import sys
        from conftest import FIXTURES
        self.p = subprocess.Popen([sys.executable, str(FIXTURES / "fake_rapl.py"), str(root), "--layout",
                                   "intel-2pkg", "--interval", str(FIXTURE_STEP_S), "--max-range-uj", "150000000"],
                                  stdout=subprocess.PIPE, text=True)
        info = json.loads(self.p.stdout.readline())
        self.root = info["root"]
        self.rates = info["device_rates_w"]

    def device_rates_w(self):
        return dict(self.rates)

    def stop(self):
        self.p.terminate()
        self.p.wait(10)
        self.p.stdout.close()


@pytest.fixture
def fake(tmp_path):
    f = _FakeProc(tmp_path / "sys")
    yield f
    f.stop()


def tiny_trainer(tmp_path, callbacks=None):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(1)
    rows = [{"input_ids": torch.randint(1, 64, (12,), generator=g), "attention_mask": torch.ones(12, dtype=torch.long),
             "labels": torch.tensor(i % 2)} for i in range(32)]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), per_device_train_batch_size=4, per_device_eval_batch_size=8,
        max_steps=8, logging_steps=4, eval_strategy="steps", eval_steps=8, report_to=[], use_cpu=True,
        include_num_input_tokens_seen=True, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    return transformers.Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows[:16],
                                callbacks=callbacks)


def test_trainer_callback_windows_and_logs(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("WATTMETER_SYSFS_ROOT", fake.root)
    monkeypatch.delenv("WATTMETER_CONTROL", raising=False)
    from wattmeter.integrations.hf import WattmeterCallback

    trainer = tiny_trainer(tmp_path)
    cb = WattmeterCallback.install(trainer, period=1.0, no_gpu=True)
    trainer.train()
    assert cb.meter is not None and not cb.meter.running
    rec = os.path.join(str(tmp_path / "hf"), "wattmeter")
    assert cb.meter.dir == rec
    r = wattmeter.load(rec)
    rows = r.windows(frame=False)
    steps = [x for x in rows if x["name"] == "step"]
    assert [x["step"] for x in steps] == list(range(1, 9))
    assert sum(x["name"] == "epoch" for x in rows) >= 1 and sum(x["name"] == "eval" for x in rows) == 1
    rates = fake.device_rates_w()
    from test_windows import read_windows
    _, lines = read_windows(rec)
    for w in lines:
        # Exact energy from 50 ms up (test_windows covers 50 ms to 3 s); a step
        # of a few ms on a loaded 2-core machine can land while the fixture's
        # writer process is descheduled, so there only the sign and the upper
        # bound are checked.
        if w["event"] == "end" and w["duration_s"] >= 0.05:
            check_energy(w, rates)
        elif w["event"] == "end":
            for dev, rate in rates.items():
                assert 0 <= w["energy_j"][dev] <= rate * (w["duration_s"] + 2 * FIXTURE_STEP_S + 0.02), w
    for x in steps:
        assert x["samples"] == 4 and x["tokens"] == 48  # 4 rows of 12 tokens
    logged = [h for h in trainer.state.log_history if "wattmeter/j_per_step" in h]
    assert len(logged) == 2  # logging_steps=4 of 8 steps
    first = logged[0]
    want = sum(x["energy_j"] for x in steps[:4]) / 4
    assert first["wattmeter/j_per_step"] == pytest.approx(want, rel=1e-6)
    assert first["wattmeter/j_per_sample"] == pytest.approx(want / 4, rel=1e-6)
    assert first["wattmeter/j_per_token"] == pytest.approx(want / 48, rel=1e-6)
    assert first["wattmeter/energy_j"] > 0
    assert any("wattmeter/eval_energy_j" in h for h in trainer.state.log_history)
