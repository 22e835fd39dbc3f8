"""The measured set is the command's whole process tree, children started
later included, plus any --pid given; their CPU time (and so their energy)
is attributed to them."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from conftest import FAST, PY, assert_child_cpu, busy_code, kill_quietly, read_meta, report_json, run_wm

PROC_PERIOD = float(FAST[FAST.index("--proc-period") + 1])

WORKLOAD = textwrap.dedent("""
    import json, multiprocessing as mp, resource, subprocess, sys, time

    def burn(cpu_s):
        # a fixed amount of CPU time, however loaded the machine is
        end = time.process_time() + cpu_s
        while time.process_time() < end:
            pass

    if __name__ == "__main__":
        time.sleep(0.4)                      # the tree grows after the start
        ctx = mp.get_context("fork")
        ps = [ctx.Process(target=burn, args=(1.0,)) for _ in range(2)]
        for p in ps:
            p.start()
        workers = [p.pid for p in ps]
        for p in ps:
            p.join()
        # a grandchild two levels down: sh -> python
        sh = subprocess.Popen(["sh", "-c", 'exec "$0" -c "$1"', sys.executable,
                               "import time\\ne = 0.5  # process CPU, interpreter start-up included\\n"
                               "while time.process_time() < e: pass"])
        sh.wait()
        me = resource.getrusage(resource.RUSAGE_SELF)
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(json.dumps({"workers": workers, "grandchild": sh.pid,
                          "tree_cpu_s": me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime}))
""")


def test_children_started_later_are_measured_and_attributed(tmp_path):
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    out = tmp_path / "rec"
    p = run_wm(["run", "-o", str(out), *FAST, "--", PY, str(script)], timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    s = report_json(out)
    procs = s["processes"]

    root = read_meta(out)["pids"][0]
    assert str(root) in procs
    for w in info["workers"]:
        assert str(w) in procs, f"worker {w} missing from processes: {sorted(procs)}"
        assert_child_cpu(procs[str(w)]["cpu_s"], 1.0, PROC_PERIOD, f"worker {w}")
        assert procs[str(w)]["energy_j"]["cpu"] > 0
    # The sh -> python grandchild (same pid after exec) is in the tree too.
    assert str(info["grandchild"]) in procs
    assert_child_cpu(procs[str(info["grandchild"])]["cpu_s"], 0.5, PROC_PERIOD, "grandchild")

    # All the CPU the tree used, and nothing else, is in the processes.
    total = sum(x["cpu_s"] for x in procs.values())
    assert total == pytest.approx(info["tree_cpu_s"], abs=0.15 + 0.05 * info["tree_cpu_s"])

    # The workers' energy is most of what was attributed.
    workers_j = sum(procs[str(w)]["energy_j"]["cpu"] for w in info["workers"])
    assert 0 < workers_j <= s["energy_j"]["cpu_attributed"] + 1e-6
    assert workers_j > 0.5 * s["energy_j"]["cpu_attributed"]


def test_pid_option_measures_an_independent_process(tmp_path):
    """--pid PID adds a process that is not a descendant of the command."""
    busy = subprocess.Popen([PY, "-c", busy_code(30)], stdin=subprocess.DEVNULL)
    try:
        def cpu_ticks() -> int:
            with open(f"/proc/{busy.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime

        t0 = cpu_ticks()
        out = tmp_path / "rec"
        p = run_wm(["run", "--pid", str(busy.pid), "-o", str(out), *FAST, "--", "sleep", "1.5"])
        used = (cpu_ticks() - t0) / os.sysconf("SC_CLK_TCK")
    finally:
        kill_quietly(busy.pid)
        busy.wait()
    assert p.returncode == 0, p.stderr
    s = report_json(out)
    assert str(busy.pid) in s["processes"], sorted(s["processes"])
    got = s["processes"][str(busy.pid)]
    assert got["cpu_s"] > 0.1  # the busy process got 0.26 s of a 1.5 s run once, at load 30
    assert got["cpu_s"] == pytest.approx(used, abs=0.15)
    assert got["energy_j"]["cpu"] > 0
    assert busy.pid in read_meta(out)["pids"]


def test_pid_option_rejects_a_process_that_does_not_exist(tmp_path):
    out = tmp_path / "rec"
    marker = tmp_path / "ran"
    p = run_wm(["run", "--pid", "4194000", "-o", str(out), "--", "touch", str(marker)])
    assert p.returncode == 125, (p.returncode, p.stderr)
    assert "4194000" in p.stderr
    assert not marker.exists()
