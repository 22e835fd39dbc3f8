"""Services outside the tree (issue 18 item 1): `run --include-pid/-name/
-cgroup/-unit` and Meter(include_*=) add processes that the measured command
only talks to — an ollama-like server — to the measured set, labelled
``included``.

The server is a real HTTP server (tests/fixtures/cpu_server.py) started by
the test, outside wattmeter's tree; the measured command is a client that
calls it. Truth: the server's own CPU time from /proc/<pid>/stat (utime +
stime), or its cgroup's cpu.stat usage_usec, read by the test around the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from conftest import FAST, FIXTURES, PY, report_json, read_meta, read_sample_lines, run_wm, wait_for

SERVER = str(FIXTURES / "cpu_server.py")
CLIENT = str(FIXTURES / "cpu_client.py")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s_of(pid: int) -> float:
    """utime + stime of pid, in seconds, from /proc (the kernel's truth)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_server(tmp: Path, name: str, *tags: str) -> "tuple[subprocess.Popen, Path]":
    portfile = tmp / f"{name}.port"
    p = subprocess.Popen([PY, SERVER, str(portfile), *tags], start_new_session=True,
                         stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not portfile.exists():
        assert p.poll() is None, "the server died"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return p, portfile


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator["tuple[subprocess.Popen, Path]"]:
    p, portfile = start_server(tmp_path, "server")
    yield p, portfile
    stop(p)


def included_rows(summary: dict) -> List[dict]:
    return [p for p in summary["processes"].values() if p["included"]]


def test_ollama_case_client_plus_server_it_calls(wm: str, tmp_path: Path, server) -> None:
    """`wattmeter run --include-pid SERVER -- client`: the server's CPU is the
    included process's, apart from the client's, and in the attributed total."""
    srv, portfile = server
    before = cpu_s_of(srv.pid)
    out = tmp_path / "rec"
    r = run_wm(["run", *FAST, "-q", "-o", str(out), "--include-pid", str(srv.pid), "--",
                PY, CLIENT, str(portfile), "4", "250"], timeout=120)
    after = cpu_s_of(srv.pid)
    assert r.returncode == 0, r.stderr
    truth = after - before
    assert truth > 0.8  # 4 x 250 ms of server CPU was asked for
    s = report_json(out)
    inc = included_rows(s)
    assert [p["pid"] for p in inc] == [srv.pid]
    assert inc[0]["cpu_s"] == pytest.approx(truth, abs=0.1)
    # the client is measured too, not labelled
    mine = [p for p in s["processes"].values() if not p["included"]]
    assert any("cpu_client.py" in p["cmdline"] for p in mine)
    assert all(p["cpu_s"] < truth / 2 for p in mine)
    # apart and in the total
    assert s["included"]["n_procs"] == 1
    assert s["included"]["cpu_s"] == pytest.approx(truth, abs=0.1)
    cpu_dev = next(iter(s["included"]["attributed_j"]))
    inc_j = s["included"]["attributed_j"][cpu_dev]
    assert 0 < inc_j <= s["energy_j"][f"{cpu_dev}_attributed"] + 1e-6
    assert inc_j == pytest.approx(inc[0]["energy_j"][cpu_dev])
    # every output says so: the text summary, meta.json, the recording, HTML
    assert "of which included" in r.stderr and "[included]" in r.stderr
    assert read_meta(out)["included"]["pids"] == [srv.pid]
    lines = [json.loads(x) for x in read_sample_lines(out)]
    announced = [p for x in lines for p in x.get("new_procs", []) if p["pid"] == srv.pid]
    assert announced and announced[0]["included"] is True
    h = run_wm(["report", str(out), "--html", str(tmp_path / "r.html")])
    assert h.returncode == 0, h.stderr
    assert "included" in (tmp_path / "r.html").read_text()


def test_ollama_case_by_name_client_and_server_both_attributed(wm: str, tmp_path: Path) -> None:
    """AIPowerMeter's ollama case as the README writes it: a server already
    running outside the tree, found by name (`--server-name`, issue 19's
    spelling of --include-name), and a client that spends CPU of its own.
    Both are attributed, each its own CPU (truths: the server's /proc stat
    around the run, the client's own os.times()); the server alone is
    labelled included."""
    tag = f"wm-ollama-{os.getpid()}-serve"
    srv, portfile = start_server(tmp_path, "ollama", tag)
    try:
        before = cpu_s_of(srv.pid)
        out = tmp_path / "rec"
        r = run_wm(["run", *FAST, "-o", str(out), "--server-name", tag, "--",
                    PY, CLIENT, str(portfile), "4", "200", "20", "150", str(tmp_path / "client-times")],
                   timeout=120)
        server_truth = cpu_s_of(srv.pid) - before
    finally:
        stop(srv)
    assert r.returncode == 0, r.stderr
    client_truth = float((tmp_path / "client-times").read_text())
    assert server_truth > 0.7 and client_truth > 0.5  # 4 x 200 ms and 4 x 150 ms asked for
    s = report_json(out)
    rows = {p["pid"]: p for p in s["processes"].values()}
    assert rows[srv.pid]["included"] is True
    assert rows[srv.pid]["cpu_s"] == pytest.approx(server_truth, abs=0.1)
    client = [p for p in rows.values() if "cpu_client.py" in p["cmdline"]]
    assert len(client) == 1 and client[0]["included"] is False
    assert client[0]["cpu_s"] == pytest.approx(client_truth, abs=0.1)
    # wattmeter, whose own command line holds the pattern, is not included
    assert [p["pid"] for p in included_rows(s)] == [srv.pid]
    # both carry energy; the server's is shown apart and is within the total
    dev = next(iter(s["included"]["attributed_j"]))
    srv_j, cli_j = rows[srv.pid]["energy_j"][dev], client[0]["energy_j"][dev]
    assert srv_j > 0 and cli_j > 0
    assert s["included"]["attributed_j"][dev] == pytest.approx(srv_j)
    assert srv_j + cli_j <= s["energy_j"][f"{dev}_attributed"] + 1e-5  # printed to the µJ
    assert "[included]" in r.stderr and read_meta(out)["included"]["name"] == tag


def test_without_include_the_server_is_not_measured(wm: str, tmp_path: Path, server) -> None:
    """The failing-before case: the client alone does not carry the server."""
    srv, portfile = server
    out = tmp_path / "rec"
    r = run_wm(["run", *FAST, "-q", "-o", str(out), "--", PY, CLIENT, str(portfile), "2", "200"], timeout=120)
    assert r.returncode == 0, r.stderr
    s = report_json(out)
    assert srv.pid not in [p["pid"] for p in s["processes"].values()]
    assert s["included"] is None


def announced_pids(out: Path) -> List[int]:
    """The pids the recording has announced so far (new_procs, line by line
    as the meter writes them: what the meter sees, while it runs)."""
    try:
        lines = read_sample_lines(out)
    except OSError:
        return []
    pids = []
    for x in lines:
        try:
            pids += [p["pid"] for p in json.loads(x).get("new_procs", [])]
        except ValueError:
            pass  # a line being written
    return pids


def test_include_name_adds_a_server_that_starts_during_the_run(wm: str, tmp_path: Path) -> None:
    """--include-name REGEX: a matching process that starts after the run began
    is added; wattmeter itself (whose command line holds the pattern) is not.

    Deterministic: the client's port file is given to it only once the
    recording has announced the late server (the meter has found it), so
    every request's CPU falls after its discovery whatever the load."""
    tag = f"wm-inc-{os.getpid()}-late"
    portfile = tmp_path / "late.port"        # the client waits for this one
    out = tmp_path / "rec"
    run = subprocess.Popen([wm, "run", *FAST, "-q", "-o", str(out), "--include-name", tag, "--",
                            PY, CLIENT, str(portfile), "3", "250", "120"],
                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    late = None
    try:
        assert wait_for(lambda: (out / "samples.jsonl").exists(), 30.0, 0.05), "the run did not start recording"
        late, real_port = start_server(tmp_path, "late-server", tag)  # the test's child, not wattmeter's
        assert wait_for(lambda: late.pid in announced_pids(out), 60.0, 0.05), "the meter never found the server"
        at_found = cpu_s_of(late.pid)  # the meter's baseline was taken before this
        os.rename(real_port, portfile)
        _, err = run.communicate(timeout=120)
        truth = cpu_s_of(late.pid) - at_found
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if late:
            stop(late)
    assert run.returncode == 0, err
    s = report_json(out)
    inc = included_rows(s)
    assert [p["pid"] for p in inc] == [late.pid]
    assert truth > 0.7  # 3 x 250 ms asked for
    # counted from when it was found: all of its request CPU (a tick each side
    # of rounding, and its idle wait between discovery and our read)
    assert inc[0]["cpu_s"] == pytest.approx(truth, abs=0.05)
    assert read_meta(out)["included"]["name"] == tag


def test_include_name_rejects_a_bad_regex(wm: str, tmp_path: Path) -> None:
    r = run_wm(["run", "-q", "-o", str(tmp_path / "x"), "--include-name", "(unclosed", "--", "true"])
    assert r.returncode == 125
    assert "POSIX extended regular expression" in r.stderr


def test_include_pid_that_is_not_running(wm: str, tmp_path: Path) -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    r = run_wm(["run", "-q", "-o", str(tmp_path / "x"), "--include-pid", str(p.pid), "--", "true"])
    assert r.returncode == 125
    assert f"cannot include pid {p.pid}" in r.stderr


# ---- cgroups ------------------------------------------------------------------------


def v2_mount() -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    pytest.skip("no cgroup v2 hierarchy mounted")


def usage_usec(cg: Path) -> int:
    for line in (cg / "cpu.stat").read_text().splitlines():
        k, v = line.split()
        if k == "usage_usec":
            return int(v)
    raise AssertionError("no usage_usec")


@pytest.fixture
def test_cgroup() -> Iterator[Path]:
    """A cgroup of this test's own under the v2 hierarchy, removed after."""
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    root = Path(v2_mount())
    cg = root / f"wattmeter-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        cg.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a cgroup: {e}")
    yield cg
    for d in sorted(cg.rglob("*"), key=lambda p: -len(p.parts)):
        if d.is_dir():
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    (root / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
            d.rmdir()
    for pid in (cg / "cgroup.procs").read_text().split():
        try:
            (root / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    cg.rmdir()


@pytest.mark.parametrize("how", ["cgroup", "unit"])
def test_include_cgroup_and_unit(wm: str, tmp_path: Path, test_cgroup: Path, how: str) -> None:
    """--include-cgroup PATH / --include-unit UNIT: the cgroup's processes are
    included; their CPU equals the cgroup's own cpu.stat usage_usec delta."""
    unit = f"wmtest-{os.getpid()}.service"
    cg = test_cgroup / unit if how == "unit" else test_cgroup
    cg.mkdir(exist_ok=True)
    srv, portfile = start_server(tmp_path, "cg")
    try:
        (cg / "cgroup.procs").write_text(str(srv.pid))
        before = usage_usec(cg)
        out = tmp_path / "rec"
        opt = ["--include-unit", unit] if how == "unit" else ["--include-cgroup", str(cg)]
        r = run_wm(["run", *FAST, "-q", "-o", str(out), *opt, "--", PY, CLIENT, str(portfile), "3", "250"],
                   timeout=120)
        truth = (usage_usec(cg) - before) / 1e6
    finally:
        stop(srv)
    assert r.returncode == 0, r.stderr
    s = report_json(out)
    inc = included_rows(s)
    assert [p["pid"] for p in inc] == [srv.pid]
    # cpu.stat is in microseconds, /proc stat in ticks: a tick of rounding each
    assert inc[0]["cpu_s"] == pytest.approx(truth, abs=0.05)
    assert read_meta(out)["included"]["cgroup"] == str(cg)


def test_include_unit_that_does_not_exist(wm: str, tmp_path: Path) -> None:
    r = run_wm(["run", "-q", "-o", str(tmp_path / "x"), "--include-unit", "no-such-unit-xyz", "--", "true"])
    assert r.returncode == 125
    assert "no cgroup of that unit" in r.stderr


# ---- Python ---------------------------------------------------------------------------


def test_python_meter_include_pids(tmp_path: Path, server) -> None:
    """Meter(include_pids=[...]): the same in Python; Results.included and the
    processes frame's ``included`` column."""
    srv, portfile = server
    code = f"""
import json, sys, urllib.request
import wattmeter
port = int(open({str(portfile)!r}).read())
with wattmeter.Meter({str(tmp_path / 'py')!r}, period=0.05, proc_period=0.2, include_pids=[{srv.pid}]) as m:
    for _ in range(3):
        urllib.request.urlopen(f"http://127.0.0.1:{{port}}/burn?ms=250", timeout=30).read()
r = m.results
df = r.processes_frame()
print(json.dumps({{"included": r.included, "flag": bool(df.loc[{srv.pid}, "included"]),
                  "others": [bool(x) for x in df.drop({srv.pid})["included"]]}}))
"""
    before = cpu_s_of(srv.pid)
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    truth = cpu_s_of(srv.pid) - before
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["flag"] is True and not any(got["others"])
    assert got["included"]["n_procs"] == 1
    assert got["included"]["cpu_s"] == pytest.approx(truth, abs=0.1)


def test_python_meter_include_checks_its_values() -> None:
    import wattmeter
    with pytest.raises(ValueError, match="include_pids"):
        wattmeter.Meter(include_pids=[0])
    with pytest.raises(ValueError, match="include_name"):
        wattmeter.Meter(include_name="")


# ---- the GPU: an included server's SM share --------------------------------------------


def test_included_server_gets_its_sm_share_of_the_gpu(wm: str, tmp_path: Path, server) -> None:
    """The mock NVML puts the (outside) server at 60% SM and a foreign process
    at 20% on GPU 0: the included server gets 60/(60+20) of the GPU's energy,
    labelled included; without --include-pid it would get none."""
    from test_gpu_nvml import MOCK, scenario
    if not MOCK:
        pytest.skip("mock libnvidia-ml not built")
    srv, portfile = server
    pidfile = tmp_path / "srvpid"
    pidfile.write_text(str(srv.pid))
    env = scenario(tmp_path, f"util_period_s=0.02\ngpu0.watts=300\ngpu0.proc=@{pidfile}:60:2048\n"
                             "gpu0.proc=4000001:20:512\n")
    out = tmp_path / "rec"
    r = run_wm(["run", "--nvml-lib", MOCK, "-o", str(out), "--period", "0.05", "--proc-period", "0.1",
                "--include-pid", str(srv.pid), "--", PY, CLIENT, str(portfile), "2", "300"], env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    s = report_json(out)
    total = s["energy_j"]["gpu0"]
    p = s["processes"][str(srv.pid)]
    assert p["included"] is True
    assert p["energy_j"]["gpu0"] / total == pytest.approx(0.75, abs=0.03)
    assert s["included"]["attributed_j"]["gpu0"] == pytest.approx(p["energy_j"]["gpu0"])
