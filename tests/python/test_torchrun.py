"""`wattmeter run -- torchrun --nproc-per-node 2 ...` on one node (issue 18
item 4): the local ranks are measured as one process tree, each rank's CPU
attributed to it, and the node's devices counted once.

Real torch (the CPU build from PyPI) and a real torchrun: two ranks that
join a gloo process group, burn different amounts of CPU (so a swap or a
merge would show) and all-reduce. Truths: each rank's own os.times() (its
whole life, interpreter and torch import included), written just before it
idles and exits; the fake RAPL tree's known rates for the devices.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import read_meta, report_json, run_wm

pytest.importorskip("torch")
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")

# A rank: argv[1] is the output folder. Rank r burns 0.6 + 0.8 r s of CPU.
RANK = r"""
import os, sys, time
import torch
import torch.distributed as dist
dist.init_process_group("gloo")
r = dist.get_rank()
t = time.process_time()
while time.process_time() - t < 0.6 + 0.8 * r:
    pass
x = torch.ones(4) * (r + 1)
dist.all_reduce(x)
dist.destroy_process_group()
tm = os.times()
with open(os.path.join(sys.argv[1], f"rank-{r}.json"), "w") as f:
    f.write('{"pid": %d, "rank": %d, "local_rank": %s, "cpu_s": %r, "sum": %r}'
            % (os.getpid(), r, os.environ["LOCAL_RANK"], tm.user + tm.system, float(x[0])))
# idle past a few process scans, so the meter's last read of this rank holds
# all it spent (its exit's CPU then goes to torchrun, its parent, not here)
time.sleep(0.6)
os._exit(0)
"""


@pytest.mark.skipif(not TORCHRUN, reason="torchrun not installed")
def test_torchrun_two_local_ranks_one_tree_each_rank_attributed(wm: str, tmp_path: Path, fake_rapl) -> None:
    fake = fake_rapl("intel-2pkg")
    rates = fake.device_rates_w()
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    (tmp_path / "ranks").mkdir()
    out = tmp_path / "rec"
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "PMI", "TORCHELASTIC", "WATTMETER_JOB"))
           and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    r = run_wm(["run", "-q", "--sysfs-root", fake.root, "--period", "0.05", "--proc-period", "0.1", "-o", str(out),
                "--", TORCHRUN, "--standalone", "--nproc-per-node", "2", str(script), str(tmp_path / "ranks")],
               env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    truth = {}
    for f in (tmp_path / "ranks").iterdir():
        t = json.loads(f.read_text())
        truth[t["rank"]] = t
    assert sorted(truth) == [0, 1]
    assert all(t["sum"] == 3.0 for t in truth.values())  # the process group really ran
    assert sorted(t["local_rank"] for t in truth.values()) == [0, 1]
    s = report_json(out)
    rows = {p["pid"]: p for p in s["processes"].values()}
    # both ranks are in the one tree, each with its own CPU (not merged, not
    # swapped: rank 1 burned 0.8 s more than rank 0)
    for rank, t in truth.items():
        row = rows[t["pid"]]
        assert row["included"] is False
        assert row["cpu_s"] == pytest.approx(t["cpu_s"], abs=0.12), (rank, row)
    cpu0, cpu1 = (rows[truth[k]["pid"]]["cpu_s"] for k in (0, 1))
    assert cpu1 - cpu0 == pytest.approx(truth[1]["cpu_s"] - truth[0]["cpu_s"], abs=0.2)
    # each rank carries energy of its own, within the attributed total (the
    # split between them follows each interval's machine-wide CPU, which a
    # shared machine's other load moves: no ratio is asserted)
    e0, e1 = (rows[truth[k]["pid"]]["energy_j"]["cpu"] for k in (0, 1))
    assert e0 > 0 and e1 > 0
    assert e0 + e1 <= s["energy_j"]["cpu_attributed"] + 1e-5
    # the node's devices once: the fixture's rate times the run, not twice it
    dur = s["duration_s"]
    for dev in ("cpu", "dram"):
        assert s["energy_j"][dev] == pytest.approx(rates[dev] * dur, rel=0.05), dev
    # one meter, no job lock taken for ranks it runs itself
    meta = read_meta(out)
    assert meta["job"] is None
    assert "torchrun" in " ".join(meta.get("command", [])) or "torchrun" in json.dumps(meta)
