"""The PyTorch Lightning callback (issue 17 item 6) with the real Lightning
and CPU torch from PyPI, on the fake RAPL tree (its writer in its own
process): every batch, epoch and validation is a window of the recording,
each step's energy is the fake tree's rate x the step's own duration, and
``self.log`` carries J/step and J/sample to the Trainer's loggers."""

from __future__ import annotations

import csv
import os

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

import wattmeter  # noqa: E402
from test_integration_hf import _FakeProc  # noqa: E402
from test_windows import check_energy, read_windows  # noqa: E402


@pytest.fixture
def fake(tmp_path):
    f = _FakeProc(tmp_path / "sys")
    yield f
    f.stop()


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 2)

    def training_step(self, batch, i):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.lin(x), y)

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.lin(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_callback_windows_and_logged_metrics(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("WATTMETER_SYSFS_ROOT", fake.root)
    monkeypatch.delenv("WATTMETER_CONTROL", raising=False)
    from wattmeter.integrations.lightning import WattmeterCallback

    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds = torch.utils.data.TensorDataset(torch.randn(48, 8), torch.randint(0, 2, (48,)))
    train = torch.utils.data.DataLoader(ds, batch_size=6)
    val = torch.utils.data.DataLoader(ds, batch_size=16)
    cb = WattmeterCallback(period=1.0, no_gpu=True)
    logger = pl.loggers.CSVLogger(str(tmp_path / "logs"), name="t")
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, callbacks=[cb], logger=logger,
                         log_every_n_steps=4, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(tmp_path / "pl"),
                         num_sanity_val_steps=0)
    trainer.fit(Tiny(), train, val)
    rec = os.path.join(str(tmp_path / "pl"), "wattmeter")
    assert cb.meter is not None and cb.meter.dir == rec and not cb.meter.running
    rows = wattmeter.load(rec).windows(frame=False)
    steps = [x for x in rows if x["name"] == "step"]
    assert [x["step"] for x in steps] == list(range(1, 9))  # 48 rows / 6
    assert all(x["samples"] == 6 for x in steps)
    assert sum(x["name"] == "eval" for x in rows) == 1 and sum(x["name"] == "epoch" for x in rows) == 1
    _, lines = read_windows(rec)
    for w in lines:
        if w["event"] == "end":
            check_energy(w, fake.device_rates_w())
    logger.finalize("success")
    with open(os.path.join(logger.log_dir, "metrics.csv"), encoding="utf-8") as f:
        logged = [r for r in csv.DictReader(f) if r.get("wattmeter/j_per_step")]
    assert len(logged) == 2  # at steps 4 and 8
    want = sum(x["energy_j"] for x in steps[:4]) / 4
    assert float(logged[0]["wattmeter/j_per_step"]) == pytest.approx(want, rel=1e-5)
    assert float(logged[0]["wattmeter/j_per_sample"]) == pytest.approx(want / 6, rel=1e-5)
