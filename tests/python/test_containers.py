"""Containers — AIPowerMeter's Docker case (issue 18 item 3): two processes
on one GPU, one of them in a container, each get their own SM share.

The "container" is real kernel machinery, as a runtime makes it: a PID
namespace (`unshare --pid --fork --mount-proc`) and a cgroup the test
creates with docker's name shape (docker-<64 hex>.scope). The mock NVML
reports host PIDs, as the driver does. Truths: the scenario's SM shares, the
namespace's own view of its pid (1), the cgroup's name.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PY, report_json, run_wm
from test_gpu_nvml import MOCK, scenario
from test_include import test_cgroup  # noqa: F401  (fixture)


def host_child_of(pid: int, timeout: float = 10) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("the namespace's first process did not start")


@pytest.mark.skipif(not MOCK, reason="mock libnvidia-ml not built")
def test_docker_case_two_processes_on_one_gpu_one_in_a_container(wm: str, tmp_path: Path,
                                                                  test_cgroup: Path) -> None:
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    cid = secrets.token_hex(32)
    ctr = test_cgroup / f"docker-{cid}.scope"
    ctr.mkdir()
    # the container: a process in its own pid namespace, in the docker-named cgroup
    ns = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", PY, "-c",
                           "import os, time; open(os.environ['NSPID_OUT'], 'w').write(str(os.getpid())); "
                           "time.sleep(60)"],
                          env={**os.environ, "NSPID_OUT": str(tmp_path / "nspid")}, stdin=subprocess.DEVNULL)
    try:
        inner = host_child_of(ns.pid)
        (ctr / "cgroup.procs").write_text(str(inner))
        (tmp_path / "pid-b").write_text(str(inner))
        env = scenario(tmp_path, f"util_period_s=0.02\ngpu0.watts=300\ngpu0.proc=@{tmp_path / 'pid-a'}:50:1024\n"
                                 f"gpu0.proc=@{tmp_path / 'pid-b'}:25:512\n")
        out = tmp_path / "rec"
        # the process of ours on the GPU, on it from before the start (as B is)
        a_proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL)
        (tmp_path / "pid-a").write_text(str(a_proc.pid))
        try:
            r = run_wm(["run", "--nvml-lib", MOCK, "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
                        "--pid", str(a_proc.pid), "--include-cgroup", str(ctr), "--", "sleep", "2"],
                       env=env, timeout=120)
        finally:
            a_proc.kill()
            a_proc.wait()
        assert r.returncode == 0, r.stderr
    finally:
        ns.kill()
        ns.wait()
    # the namespace saw its process as pid 1: the truth for nspid
    assert (tmp_path / "nspid").read_text() == "1"
    s = report_json(out)
    total = s["energy_j"]["gpu0"]
    a = int((tmp_path / "pid-a").read_text())
    pa, pb = s["processes"][str(a)], s["processes"][str(inner)]
    # each its own SM share: 50 and 25 of the 75 reported
    assert pa["energy_j"]["gpu0"] / total == pytest.approx(50 / 75, abs=0.04)
    assert pb["energy_j"]["gpu0"] / total == pytest.approx(25 / 75, abs=0.04)
    # the container process is labelled: included, its container, its pid in there
    assert pb["included"] is True
    assert pb["container"] == f"docker:{cid[:12]}"
    assert pb["nspid"] == 1
    assert pa["container"] is None and pa["nspid"] is None
    assert f"[docker:{cid[:12]}]" in r.stderr


@pytest.mark.skipif(not MOCK, reason="mock libnvidia-ml not built")
def test_inside_a_container_host_pids_are_said_to_be_unmappable(wm: str, tmp_path: Path) -> None:
    """wattmeter inside the pid namespace: NVML reports host pids its /proc
    cannot show. The kernel gives no way back from there; the share stays
    unattributed and the warning says exactly that and names --gpu-exclusive,
    which then bills the GPU whole to the command."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    env = scenario(tmp_path, "util_period_s=0.02\ngpu0.watts=200\ngpu0.proc=3999999:60:1024\n")
    for excl in (False, True):
        out = tmp_path / f"rec-{excl}"
        p = subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", wm, "run", "--nvml-lib", MOCK,
                            "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
                            *(["--gpu-exclusive"] if excl else []), "--", PY, "-c", "import time; time.sleep(1)"],
                           env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        s = report_json(out)
        if excl:
            assert s["energy_j"]["gpu0_attributed"] == pytest.approx(s["energy_j"]["gpu0"], rel=1e-6)
        else:
            assert s["energy_j"]["gpu0_attributed"] == 0
            warnings = "\n".join(json.load(open(out / "meta.json"))["warnings"])
            assert "3999999" in warnings and "another pid namespace" in warnings and "--gpu-exclusive" in warnings


# The container's first process: joins the container's cgroup, gives itself
# the host's /proc at $HOSTPROC (a container run with -v /proc:/host/proc:ro),
# then the container proper: a pid namespace with its own /proc, where a
# trainer (on the GPU, tagged) runs and wattmeter starts once the test says go.
CONTAINER_SH = r"""
echo $$ > "$CTR/cgroup.procs" || exit 90
mount --bind /proc "$HOSTPROC" || exit 91
exec unshare --pid --fork --kill-child --mount-proc sh -c '
  "$PY" -c "import os, sys, time; open(os.environ[\"NSPID_OUT\"], \"w\").write(str(os.getpid())); time.sleep(60)" "$TAG" &
  T=$!
  while [ ! -e "$GO" ]; do sleep 0.05; done
  exec "$WM" run --nvml-lib "$MOCK" -o "$OUT" --period 0.05 --proc-period 0.1 --pid $T $MAP -- sleep 2
'
"""


def host_pid_of_tag(tag: str, timeout: float = 20) -> int:
    """The host pid of the process whose command line holds tag, found from
    the host's own /proc (independent of what wattmeter maps)."""
    end = time.monotonic() + timeout
    me = str(os.getpid())
    while time.monotonic() < end:
        for d in os.listdir("/proc"):
            if not d.isdigit() or d == me:
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if tag.encode() in argv and argv[0] != b"sh":
                return int(d)
        time.sleep(0.05)
    raise AssertionError(f"no process tagged {tag}")


@pytest.mark.skipif(not MOCK, reason="mock libnvidia-ml not built")
@pytest.mark.parametrize("given_host_proc", [True, False])
def test_inside_a_container_host_pids_map_through_the_hosts_proc(wm: str, tmp_path: Path, test_cgroup: Path,
                                                                 given_host_proc: bool) -> None:
    """wattmeter inside a container (its own pid namespace and /proc, a
    docker-named cgroup the test made) measures a trainer that NVML names by
    its host pid, beside another container's process on the same GPU.
    Given the host's /proc (--host-procfs), the trainer's host pid maps to
    its pid in here (the kernel's NSpid, its pid namespace checked): it gets
    its own SM share, and the other container's stays unattributed, said so.
    Without it the kernel gives no way back: nothing is attributed and the
    warning says exactly that, naming --host-procfs and --gpu-exclusive.
    Truths: the scenario's shares, the trainer's own os.getpid() in there,
    its host pid found by the test from the host's /proc."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    tag = f"wm-trainer-{os.getpid()}-{time.monotonic_ns()}"
    ctr = test_cgroup / f"docker-{secrets.token_hex(32)}.scope"
    ctr.mkdir()
    hostproc = tmp_path / "hostproc"
    hostproc.mkdir()
    out = tmp_path / "rec"
    # the other container: its own pid namespace, host-visible, on the GPU too
    other = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", PY, "-c", "import time; time.sleep(60)"],
                             stdin=subprocess.DEVNULL)
    env = scenario(tmp_path, f"util_period_s=0.02\ngpu0.watts=300\ngpu0.proc=@{tmp_path / 'pid-trainer'}:60:2048\n"
                             f"gpu0.proc=@{tmp_path / 'pid-other'}:20:512\n")
    env.update({"CTR": str(ctr), "HOSTPROC": str(hostproc), "PY": PY, "TAG": tag, "GO": str(tmp_path / "go"),
                "WM": wm, "MOCK": MOCK, "OUT": str(out), "NSPID_OUT": str(tmp_path / "nspid"),
                "MAP": f"--host-procfs {hostproc}" if given_host_proc else ""})
    box = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", CONTAINER_SH], env=env,
                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        (tmp_path / "pid-other").write_text(str(host_child_of(other.pid)))
        trainer = host_pid_of_tag(tag)
        assert str(trainer) in (ctr / "cgroup.procs").read_text().split()  # in the container's cgroup
        (tmp_path / "pid-trainer").write_text(str(trainer))
        (tmp_path / "go").touch()
        _, err = box.communicate(timeout=120)
        assert box.returncode == 0, err
    finally:
        if box.poll() is None:
            box.kill()
            box.wait()
        other.kill()
        other.wait()
    nspid = int((tmp_path / "nspid").read_text())
    assert nspid != trainer  # a pid namespace of its own: the two differ
    s = report_json(out)
    total = s["energy_j"]["gpu0"]
    warnings = "\n".join(json.load(open(out / "meta.json"))["warnings"])
    row = s["processes"][str(nspid)]  # the table holds the pid it has in there
    if given_host_proc:
        assert row["energy_j"]["gpu0"] / total == pytest.approx(60 / 80, abs=0.04)
        assert s["energy_j"]["gpu0_attributed"] == pytest.approx(row["energy_j"]["gpu0"], rel=1e-6)
        other_host = (tmp_path / "pid-other").read_text()
        assert f"host pid {other_host}" in warnings and "another pid namespace" in warnings
        assert f"pid {trainer}" not in warnings
    else:
        assert row["energy_j"].get("gpu0", 0) == 0 and s["energy_j"]["gpu0_attributed"] == 0
        assert f"pid {trainer}" in warnings and "another pid namespace" in warnings
        assert "--host-procfs" in warnings and "--gpu-exclusive" in warnings


def test_host_procfs_that_cannot_be_opened_is_refused_with_the_fix(wm: str, tmp_path: Path) -> None:
    """A wrong --host-procfs stops before the command runs (125) and says how
    to give it; in Python the same path reaches the core (host_procfs=)."""
    r = run_wm(["run", "-q", "-o", str(tmp_path / "x"), "--host-procfs", str(tmp_path / "nope"), "--", "true"])
    assert r.returncode == 125
    assert "--host-procfs" in r.stderr and "-v /proc:/host/proc:ro" in r.stderr
    code = (f"import warnings, wattmeter\nwith warnings.catch_warnings(record=True) as w:\n"
            f"    warnings.simplefilter('always')\n"
            f"    with wattmeter.Meter({str(tmp_path / 'py')!r}, host_procfs={str(tmp_path / 'nope')!r}): pass\n"
            f"print('\\n'.join(str(x.message) for x in w))\n")
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "NOT MEASURING" in p.stdout and "host_procfs=" in p.stdout and str(tmp_path / "nope") in p.stdout
