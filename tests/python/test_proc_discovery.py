"""How `wattmeter run` finds the measured processes: through the kernel's
child lists where /proc has them, else the full scan of /proc; `sensors`
and meta.json say which, and both find the same processes (a double-forked
orphan included: `run` is a child subreaper). WATTMETER_PROC_DISCOVERY
forces a method."""

from __future__ import annotations

import glob
import json
import os
import textwrap

import pytest

from conftest import FAST, PY, read_meta, read_sample_lines, run_wm

HAVE_LISTS = bool(glob.glob(f"/proc/{os.getpid()}/task/*/children"))

# Three sleeping children, one orphan whose parent exited at once, all alive
# for a few process periods; their pids on stdout.
WORKLOAD = textwrap.dedent("""
    import json, os, subprocess, sys, time
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"]) for _ in range(3)]
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        orphan = os.fork()
        if orphan == 0:
            os.close(r)
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            time.sleep(3)
            os._exit(0)
        os._exit(0)
    os.close(w)
    orphan = int(os.read(r, 32))
    os.waitpid(mid, 0)
    time.sleep(1.5)
    print(json.dumps({"kids": [k.pid for k in kids], "orphan": orphan, "mid": mid}))
    for k in kids:
        k.wait()
    while True:          # the orphan is the CLI's now: wait until it is gone
        try:
            os.kill(orphan, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
""")


def procfs_detail(meta: dict) -> str:
    sensors = meta["sensors"]
    return next(s["detail"] for s in sensors if s["name"] == "procfs")


def measured_pids(out) -> set:
    pids = set()
    for line in read_sample_lines(out):
        pids.update(p["pid"] for p in json.loads(line).get("procs", []))
    return pids


def run_tree(tmp_path, name, env_value):
    script = tmp_path / "tree.py"
    script.write_text(WORKLOAD)
    out = tmp_path / name
    env = dict(os.environ)
    env.pop("WATTMETER_PROC_DISCOVERY", None)
    if env_value is not None:
        env["WATTMETER_PROC_DISCOVERY"] = env_value
    p = run_wm(["run", "-o", str(out), *FAST, "--", PY, str(script)], timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), out


@pytest.mark.skipif(not HAVE_LISTS, reason="this kernel has no /proc/<pid>/task/<tid>/children")
def test_child_lists_and_full_scan_find_the_same_tree(tmp_path):
    for mode, says in ((None, "child lists"), ("scan", "full scan")):
        info, out = run_tree(tmp_path, f"rec-{mode}", mode)
        assert says in procfs_detail(read_meta(out))
        seen = measured_pids(out)
        # every child, and the orphan (its parent exited before any scan
        # could see it: it came back to the subreaper CLI)
        for pid in info["kids"] + [info["orphan"]]:
            assert pid in seen, (mode, pid, sorted(seen))


@pytest.mark.skipif(not HAVE_LISTS, reason="this kernel has no /proc/<pid>/task/<tid>/children")
def test_sensors_says_child_lists():
    p = run_wm(["sensors", "--json"])
    assert p.returncode == 0, p.stderr
    assert "processes found by child lists" in procfs_detail(json.loads(p.stdout))


def test_bad_discovery_value_is_refused_with_the_choices(tmp_path):
    env = dict(os.environ, WATTMETER_PROC_DISCOVERY="fast")
    p = run_wm(["run", "-o", str(tmp_path / "rec"), "--", PY, "-c", "pass"], env=env)
    assert p.returncode != 0
    assert "auto, child-lists, scan" in p.stderr
