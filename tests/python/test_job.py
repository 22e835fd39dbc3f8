"""Jobs across ranks and nodes (issue 18 item 4): the launcher's identity in
meta.json; one meter per node measures the devices (a node-local flock keyed
by the job) and the other ranks register their processes with it; `report
--job` and wattmeter.load_job() merge the nodes' recordings.

Ranks are real processes with the variables a launcher sets (RANK,
SLURM_*); a second node is a UTS namespace of its own (`unshare --uts`,
another hostname) with its own node-local lock folder. Truths: each rank's
os.times() (its CPU, written at its exit) and the node meters' own device
totals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import PY, WATTMETER, read_meta, report_json, run_wm

# A rank: burns argv[1] s of CPU, then writes its os.times() CPU to argv[2].
RANK = """
import os, sys, time
t = time.process_time()
while time.process_time() - t < float(sys.argv[1]): pass
x = os.times()
open(sys.argv[2], "w").write(repr(x.user + x.system))
"""


def rank_env(job: str, rank: int, lockdir: Path, **more: str) -> Dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("SLURM_", "OMPI_", "PMI", "TORCHELASTIC")) or k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            del env[k]
    env.update({"WATTMETER_JOB": job, "RANK": str(rank), "WORLD_SIZE": "3", "WATTMETER_LOCK_DIR": str(lockdir)})
    env.update(more)
    return env


def start_rank(tmp: Path, job: str, rank: int, cpu_s: float, lockdir: Path, host: str = "") -> subprocess.Popen:
    cmd = [WATTMETER, "run", "-q", "--period", "0.05", "--proc-period", "0.1", "-o", str(tmp / f"rec-{rank}"),
           "--", PY, "-c", RANK, str(cpu_s), str(tmp / f"truth-{rank}")]
    if host:
        # another node: its own hostname (UTS namespace)
        cmd = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
    return subprocess.Popen(cmd, env=rank_env(job, rank, lockdir), stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_all(ps: List[subprocess.Popen]) -> None:
    for p in ps:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def test_launcher_identity_is_in_meta(wm: str, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    env = rank_env("", 0, tmp_path / "locks", SLURM_JOB_ID="4242", SLURM_STEP_ID="0", SLURM_PROCID="5",
                   SLURM_NODEID="1", SLURM_NTASKS="8", OMPI_COMM_WORLD_RANK="5", PMI_RANK="5",
                   LOCAL_RANK="1", TORCHELASTIC_RUN_ID="tr1")
    del env["WATTMETER_JOB"], env["RANK"]
    r = run_wm(["run", "-q", "-o", str(out), "--", "true"], env=env)
    assert r.returncode == 0, r.stderr
    meta = read_meta(out)
    la = meta["launcher"]
    assert la["hostname"] == os.uname().nodename
    for k, v in (("SLURM_JOB_ID", "4242"), ("SLURM_STEP_ID", "0"), ("SLURM_PROCID", "5"), ("SLURM_NODEID", "1"),
                 ("SLURM_NTASKS", "8"), ("OMPI_COMM_WORLD_RANK", "5"), ("PMI_RANK", "5"), ("LOCAL_RANK", "1"),
                 ("TORCHELASTIC_RUN_ID", "tr1"), ("WORLD_SIZE", "3")):
        assert la[k] == v
    assert meta["job"]["key"] == "slurm-4242.0"
    assert meta["job"]["rank"] == 5
    assert meta["job"]["node_meter"] is True


def test_two_ranks_on_one_node_count_the_devices_once(wm: str, tmp_path: Path) -> None:
    job = f"t{os.getpid()}-{time.monotonic_ns()}"
    locks = tmp_path / "locks"
    r0 = start_rank(tmp_path, job, 0, 2.0, locks)
    time.sleep(0.5)  # rank 0's meter takes the node
    r1 = start_rank(tmp_path, job, 1, 0.8, locks)
    wait_all([r0, r1])
    m0, m1 = read_meta(tmp_path / "rec-0"), read_meta(tmp_path / "rec-1")
    assert (m0["job"]["node_meter"], m1["job"]["node_meter"]) == (True, False)
    s0 = report_json(tmp_path / "rec-0")
    truth = {r: float((tmp_path / f"truth-{r}").read_text()) for r in (0, 1)}
    # the node meter attributes both ranks, each apart
    assert s0["ranks"]["0"]["cpu_s"] == pytest.approx(truth[0], abs=0.1)
    assert s0["ranks"]["1"]["cpu_s"] == pytest.approx(truth[1], abs=0.15)
    p = run_wm(["report", "--job", "--json", str(tmp_path / "rec-0"), str(tmp_path / "rec-1")])
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["job"] == job and j["n_nodes"] == 1
    # the node's devices once: the node meter's totals, not the sum of both recordings
    for dev, e in j["energy_j"].items():
        assert e == pytest.approx(s0["energy_j"][dev])
    assert j["ranks"]["1"]["cpu_s"] == pytest.approx(truth[1], abs=0.15)
    assert j["ranks"]["0"]["node"] == os.uname().nodename
    assert j["warnings"] == []
    # a folder holding the recordings gives the same; and Python's load_job
    import wattmeter
    k = wattmeter.load_job(tmp_path)
    assert k["energy_j"] == pytest.approx(j["energy_j"])
    assert set(k["ranks"]) == {"0", "1"}
    t = run_wm(["report", "--job", str(tmp_path)])
    assert t.returncode == 0 and "rank 1" in t.stdout and "job total" in t.stdout
    # the registrations are gone once the ranks ended
    assert not list((locks / f"job-{job}.d").iterdir())


def test_two_nodes_sum_their_node_meters(wm: str, tmp_path: Path) -> None:
    """Node A: ranks 0 and 1; node B (its own hostname and node-local lock
    folder): rank 2. The job total is the two node meters' totals."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a second node needs unshare --uts (root)")
    job = f"n{os.getpid()}-{time.monotonic_ns()}"
    a0 = start_rank(tmp_path, job, 0, 1.5, tmp_path / "locks-a")
    b2 = start_rank(tmp_path, job, 2, 1.0, tmp_path / "locks-b", host="wm-node-b")
    time.sleep(0.5)
    a1 = start_rank(tmp_path, job, 1, 0.5, tmp_path / "locks-a")
    wait_all([a0, b2, a1])
    j = wattmeter_job(tmp_path)
    assert j["n_nodes"] == 2
    host_a = os.uname().nodename
    assert set(j["nodes"]) == {host_a, "wm-node-b"}
    s0, s2 = report_json(tmp_path / "rec-0"), report_json(tmp_path / "rec-2")
    for dev in j["energy_j"]:
        assert j["energy_j"][dev] == pytest.approx(s0["energy_j"][dev] + s2["energy_j"][dev])
    assert j["nodes"]["wm-node-b"]["ranks"] == [2]
    assert j["ranks"]["2"]["node"] == "wm-node-b"
    truth2 = float((tmp_path / "truth-2").read_text())
    assert j["ranks"]["2"]["cpu_s"] == pytest.approx(truth2, abs=0.1)
    assert j["duration_s"] >= max(s0["duration_s"], s2["duration_s"]) - 1e-6  # printed to the µs


def wattmeter_job(d: Path) -> dict:
    p = run_wm(["report", "--job", "--json", str(d)])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_a_lock_folder_open_to_others_is_refused(wm: str, tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    os.chmod(locks, 0o777)
    out = tmp_path / "rec"
    r = run_wm(["run", "-q", "-o", str(out), "--", "true"], env=rank_env("x1", 0, locks))
    assert r.returncode == 0, r.stderr
    meta = read_meta(out)
    assert meta["job"] is None
    assert any("writable by others" in w for w in meta["warnings"])
    assert not list(locks.iterdir())
