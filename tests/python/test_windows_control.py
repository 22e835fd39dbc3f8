"""Windows from other processes (issue 17 item 5): `wattmeter run` gives its
command WATTMETER_CONTROL, and a shell script (`wattmeter mark`), a C program
(include/wattmeter_client.h) and a Python Meter in the command (attached, not
a second meter) open and close windows on the run's meter. On a fake RAPL
tree at known rates each window's energy is rate x its own duration, the
edges stamped by the sender."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from conftest import PY, REPO, WATTMETER, run_wm
from test_windows import FIXTURE_STEP_S, check_energy, read_windows


@pytest.fixture
def fake(fake_rapl):
    f = fake_rapl("intel-2pkg", start=False, max_range_uj=150_000_000)
    f.start(interval_s=FIXTURE_STEP_S)
    return f


def run_under(fake, out, cmd, timeout=60):
    p = run_wm(["run", "-q", "--sysfs-root", fake.root, "--no-gpu", "--period", "1", "-o", str(out), "--", *cmd],
               timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p


def ends(out):
    _, lines = read_windows(str(out))
    return [x for x in lines if x["event"] == "end"], [x for x in lines if x["event"] == "mark"]


def test_wattmeter_mark_from_a_shell_script(fake, tmp_path):
    script = textwrap.dedent("""\
        set -e
        test -S "$WATTMETER_CONTROL"
        k=$(wattmeter mark step --begin --attr step=1 --attr phase=train)
        sleep 0.3
        wattmeter mark step --end "$k" --count tokens=600 --count samples=3
        k2=$(wattmeter mark eval --begin)
        sleep 0.1
        wattmeter mark eval --end "$k2"
        wattmeter mark checkpoint --attr epoch=1
        """)
    wm_dir = os.path.dirname(WATTMETER)
    env_path = f"{wm_dir}:{os.environ.get('PATH', '')}"
    out = tmp_path / "rec"
    run_under(fake, out, ["env", f"PATH={env_path}", "sh", "-c", script])
    es, marks = ends(out)
    assert [x["name"] for x in es] == ["step", "eval"]
    step = es[0]
    assert step["attrs"] == {"step": 1, "phase": "train"} and step["counts"] == {"tokens": 600, "samples": 3}
    assert 0.3 <= step["duration_s"] < 0.6 and not step.get("open")
    for w in es:
        check_energy(w, fake.device_rates_w())
    assert step["j_per"]["tokens"] == pytest.approx(step["total_j"] / 600, rel=1e-6)
    assert [m["name"] for m in marks] == ["checkpoint"]
    # the folder of the socket is gone with the run
    p = run_wm(["mark", "x"])
    assert p.returncode == 1 and "WATTMETER_CONTROL is not set" in p.stderr


def test_c_client_header(fake, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    src = tmp_path / "client.c"
    src.write_text(textwrap.dedent("""\
        #include <stdio.h>
        #include <time.h>
        #include "wattmeter_client.h"
        static void nap(long ms) { struct timespec t = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&t, NULL); }
        int main(void) {
            wm_client c;
            int rc = wm_client_open(&c);
            if (rc) { fprintf(stderr, "open: %d\\n", rc); return 1; }
            char outer[32], inner[32];
            if (wm_client_begin(&c, "kernel \\"launch\\"", "{\\"grid\\":128}", outer, sizeof outer)) return 2;
            nap(100);
            if (wm_client_begin(&c, "inner", NULL, inner, sizeof inner)) return 3;
            nap(50);
            if (wm_client_end(&c, inner, "{\\"tokens\\":5}")) return 4;
            nap(100);
            if (wm_client_end(&c, outer, NULL)) return 5;
            wm_client_mark(&c, "done", NULL);
            wm_client_close(&c);
            return 0;
        }
        """))
    exe = tmp_path / "client"
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'include'}",
                    str(src), "-o", str(exe)], check=True)
    out = tmp_path / "rec"
    run_under(fake, out, [str(exe)])
    es, marks = ends(out)
    assert sorted(x["name"] for x in es) == ['inner', 'kernel "launch"']
    outer = next(x for x in es if x["name"] != "inner")
    inner = next(x for x in es if x["name"] == "inner")
    assert outer["attrs"] == {"grid": 128} and inner["counts"] == {"tokens": 5}
    assert outer["start_s"] < inner["start_s"] < inner["end_s"] < outer["end_s"]   # nested
    assert 0.25 <= outer["duration_s"] < 0.5 and 0.05 <= inner["duration_s"] < 0.2
    for w in es:
        check_energy(w, fake.device_rates_w())
    assert [m["name"] for m in marks] == ["done"]


def test_python_meter_under_run_attaches_instead_of_measuring_twice(fake, tmp_path):
    code = textwrap.dedent("""\
        import os, time, wattmeter
        with wattmeter.Meter() as m:
            assert m.attached, "not attached"
            for i in range(3):
                with m.window("step", step=i) as w:
                    time.sleep(0.1)
                    w.count(samples=4)
            m.mark("saved")
        assert m.stop.__self__ is m
        print(json.dumps({"cwd_runs": os.path.exists("wattmeter-runs")}))
        """).replace("import os,", "import json, os,")
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "--sysfs-root", fake.root, "--no-gpu", "--period", "1", "-o", str(out), "--",
                PY, "-c", code], cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"cwd_runs": False}  # no second recording
    es, marks = ends(out)
    assert [x["attrs"]["step"] for x in es] == [0, 1, 2]
    for w in es:
        assert w["counts"] == {"samples": 4}
        check_energy(w, fake.device_rates_w())
    assert [m["name"] for m in marks] == ["saved"]


def test_bad_datagrams_are_dropped_and_the_run_goes_on(fake, tmp_path):
    code = textwrap.dedent("""\
        import os, socket, time
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        p = os.environ["WATTMETER_CONTROL"]
        t = lambda: str(time.monotonic_ns())
        for d in [b"", b"garbage", b"{}", b'{"v":2,"op":"mark","name":"x"}', b"x" * 4000,
                  b'{"v":1,"op":"begin","key":"a","name":"x","attrs":[1]}',
                  b'{"v":1,"op":"end","key":"never-begun"}',
                  b'{"v":1,"op":"begin","key":"k","name":"ok","t_ns":' + t().encode() + b'}']:
            s.sendto(d, p)
        time.sleep(0.2)
        s.sendto(b'{"v":1,"op":"end","key":"k","counts":{"a":"b"}}', p)   # bad counts: still open
        s.sendto(b'{"v":1,"op":"end","key":"k","t_ns":' + t().encode() + b',"counts":{"n":2}}', p)
        """)
    out = tmp_path / "rec"
    run_under(fake, out, [PY, "-c", code])
    es, marks = ends(out)
    assert [(x["name"], x.get("open", False), x["counts"]) for x in es] == [("ok", False, {"n": 2})]
    assert marks == []
    check_energy(es[0], fake.device_rates_w())
