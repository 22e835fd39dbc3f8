"""What a new user hits in the first hour (issue 7, and issue 6's orphan and
short-command bugs): parallel runs, the recording fallback, damaged
recordings, the scripts' channel, -q, messages, option values, the live line,
the man page, orphans and short commands.

Every test runs the real installed command or package on real processes."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import termios
import textwrap
import time
import warnings
from pathlib import Path
from typing import List

import pytest

import wattmeter
from conftest import FAST, PY, WATTMETER, busy_code, read_meta, report_json, run_wm, wait_for


def report(dir, *args):
    return run_wm(["report", str(dir), *args])


# ---- 2. parallel runs ------------------------------------------------------------


def test_six_cli_runs_and_six_meters_started_at_once_all_run_and_record(tmp_path, wm):
    """Twelve measurements started in the same second in one folder, none with
    a folder of its own: every workload runs, every one leaves its own
    readable recording."""
    n = 6
    markers = [tmp_path / f"ran-cli-{i}" for i in range(n)] + [tmp_path / f"ran-py-{i}" for i in range(n)]
    py_code = textwrap.dedent("""
        import sys, wattmeter
        @wattmeter.Meter(period=0.05)
        def work(marker):
            open(marker, "w").write("ok")
        work(sys.argv[1])
        with wattmeter.Meter(period=0.05) as m:
            pass
        open(sys.argv[1] + ".with", "w").write(m.results.dir)
    """)
    procs = []
    for i in range(n):
        procs.append(subprocess.Popen([wm, "run", "-q", *FAST, "--", "touch", str(markers[i])],
                                      cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        procs.append(subprocess.Popen([PY, "-c", py_code, str(markers[n + i])], cwd=tmp_path,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "FileExistsError" not in err and "NOT RECORDING" not in err, err
    assert all(m.exists() for m in markers), [m.name for m in markers if not m.exists()]
    runs = sorted((tmp_path / "wattmeter-runs").iterdir())
    # six CLI runs, and two meters (decorator, with) in each of six processes
    assert len(runs) == n + 2 * n, [r.name for r in runs]
    for r in runs:
        s = report_json(r)
        assert s["samples"] >= 1 and s["complete"] is True


def test_default_folder_names_hold_time_and_pid(tmp_path, wm):
    p = subprocess.run([wm, "run", "-q", "--", "true"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    (d,) = list((tmp_path / "wattmeter-runs").iterdir())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-\d+", d.name), d.name
    assert f"recording: wattmeter-runs/{d.name}" in p.stderr


# ---- 2. the command runs even when the recording cannot be made -------------------


def test_run_with_an_unusable_folder_runs_the_command_unrecorded(tmp_path, wm):
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), "--", "true"]).returncode == 0
    before = {f: (out / f).read_bytes() for f in ("meta.json", "samples.jsonl")}
    marker = tmp_path / "ran"
    sj = tmp_path / "s.json"
    p = run_wm(["run", "-o", str(out), "--summary-json", str(sj), *FAST, "--",
                "sh", "-c", f"touch {marker}; exit 4"])
    assert p.returncode == 4, p.stderr
    assert marker.exists(), "the command did not run"
    assert "NOT RECORDING" in p.stderr and str(out) in p.stderr and "already holds a recording" in p.stderr
    assert {f: (out / f).read_bytes() for f in before} == before, "the earlier recording was touched"
    s = json.loads(sj.read_text())
    assert s["recorded"] is False and s["exit_status"] == 4 and "already holds" in s["why_not_recorded"]
    assert set(s["energy_j"]) >= {"cpu"}


def test_meter_with_an_unusable_folder_runs_the_block_unrecorded(tmp_path):
    (tmp_path / "file").write_text("not a folder\n")
    ran = []

    @wattmeter.Meter(str(tmp_path / "file" / "sub"), period=0.05)
    def f() -> int:
        ran.append(1)
        return 42

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert f() == 42
    assert ran == [1]
    msgs = [str(x.message) for x in w]
    assert any("NOT RECORDING" in m and "output_dir" in m for m in msgs), msgs
    assert not any("-o DIR" in m for m in msgs), msgs

    m = wattmeter.Meter(str(tmp_path / "file" / "sub2"), period=0.05)
    with pytest.warns(RuntimeWarning, match="NOT RECORDING"):
        with m:
            sum(range(10000))
    assert m.results.summary["recorded"] is False and m.recorded is False
    assert m.results.energy_j["cpu"] >= 0 and m.results.method["cpu"] in ("measured", "modeled")


def test_meter_that_cannot_start_still_runs_the_block_and_start_raises_with_python_advice(tmp_path):
    bad = str(tmp_path / "no-proc")
    with pytest.warns(RuntimeWarning, match="NOT MEASURING"):
        with wattmeter.Meter(str(tmp_path / "rec"), procfs_root=bad) as m:
            x = 1
    assert x == 1 and not m.running
    with pytest.raises(OSError) as ei:
        wattmeter.Meter(str(tmp_path / "rec2"), procfs_root=bad).start()
    msg = str(ei.value)
    assert "--procfs-root" not in msg and "-o DIR" not in msg, msg


# ---- 3. damaged recordings ----------------------------------------------------------


@pytest.fixture
def good_recording(tmp_path, wm):
    out = tmp_path / "good"
    assert run_wm(["run", "-q", "-o", str(out), *FAST, "--", "sleep", "0.3"]).returncode == 0
    return out


@pytest.mark.parametrize("content,says", [
    (b"garbage\n", "not valid JSON"),
    (b"\0" * 64 + b"\n", "NUL bytes"),
    (b"\x7fELF\x02\x01\x01\0\0\0\x03\x00>\x00", "no newline"),
    (b"", "empty"),
], ids=["garbage-line", "nul-bytes", "binary-no-newline", "empty"])
def test_recording_without_a_readable_sample_is_an_error(tmp_path, good_recording, content, says):
    d = tmp_path / "damaged"
    shutil.copytree(good_recording, d)
    (d / "samples.jsonl").write_bytes(content)
    assert read_meta(d)["complete"] is True and read_meta(d)["duration_s"] > 0.2
    for args in ([], ["--json"]):
        p = report(d, *args)
        assert p.returncode != 0, p.stdout
        assert says in p.stderr and "samples.jsonl" in p.stderr and "completed after" in p.stderr, p.stderr
        assert "0.0 J" not in p.stdout
    with pytest.raises(OSError, match="no readable sample|holds no sample"):
        wattmeter.load(str(d))


def test_cut_last_line_after_good_ones_is_still_read(tmp_path, good_recording):
    d = tmp_path / "cut"
    shutil.copytree(good_recording, d)
    with open(d / "samples.jsonl", "ab") as f:
        f.write(b'{"t_s":9,"energy_j":{"cpu":')
    p = report(d, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["truncated"] is True


# ---- 4. output for scripts -----------------------------------------------------------


def test_summary_json_is_a_clean_channel(tmp_path, wm):
    out, sj = tmp_path / "rec", tmp_path / "summary.json"
    p = run_wm(["run", "-q", "-o", str(out), "--summary-json", str(sj), *FAST, "--",
                "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    assert p.returncode == 3
    assert p.stdout == "to-stdout\n"
    s = json.loads(sj.read_text())          # the file is the JSON alone
    assert s == report_json(out)
    assert s["exit_status"] == 3
    assert "to-stderr" in p.stderr and f"summary: {sj}" in p.stderr and f"recording: {out}" in p.stderr


def test_summary_json_that_cannot_be_written_is_refused_before_running(tmp_path, wm):
    marker = tmp_path / "ran"
    p = run_wm(["run", "--summary-json", str(tmp_path / "no" / "such" / "s.json"), "--", "touch", str(marker)])
    assert p.returncode == 125 and "--summary-json" in p.stderr
    assert not marker.exists()


def test_quiet_drops_only_the_live_line(tmp_path, wm):
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "--sysfs-root", str(tmp_path), "-o", str(out), *FAST, "--", "true"])
    assert p.returncode == 0
    assert "MODELED" in p.stderr                       # the warning
    assert f"recording: {out}" in p.stderr             # the location
    assert "device" in p.stderr and "\033" not in p.stderr


# ---- 5. messages -----------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{"period": 0}, {"period": -1}, {"period": float("nan")},
                                {"period": float("inf")}, {"period": 1e9}, {"proc_period": 0},
                                {"mem_period": -1}, {"model_min_w": 5, "model_max_w": 1},
                                {"pids": [0]}])
def test_invalid_meter_values_raise_valueerror_at_construction(kw):
    with pytest.raises(ValueError) as ei:
        wattmeter.Meter(**kw)
    msg = str(ei.value)
    assert "--" not in msg, msg                      # Python advice, not CLI flags
    name = next(iter(kw))
    assert name in msg, msg


def test_meter_value_of_the_wrong_type_is_a_typeerror():
    with pytest.raises(TypeError):
        wattmeter.Meter(period="0.5")  # type: ignore[arg-type]


def test_disk_full_is_named_not_called_a_killed_run(tmp_path, wm):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        p = run_wm(["run", "-o", str(mnt / "rec"), "--period", "0.005", "--", "sleep", "1.5"])
        assert p.returncode == 0, p.stderr
        assert "No space left on device" in p.stderr, p.stderr
        assert "was killed" not in p.stderr, p.stderr
    finally:
        subprocess.run(["umount", str(mnt)])


def test_multiline_fix_in_the_summary_note_is_printed_as_lines(tmp_path, good_recording):
    """The permission-denied note carries a multi-line fix (a udev rule): it
    must come out as lines that can be copied, not with '?' for newlines."""
    d = tmp_path / "denied"
    shutil.copytree(good_recording, d)
    meta = read_meta(d)
    fix = "sudo tee /etc/udev/rules.d/99-rapl.rules <<'EOF'\nSUBSYSTEM==\"powercap\", MODE=\"0440\"\nEOF"
    meta["sensors"] = [{"name": "rapl-powercap", "state": "permission denied",
                        "detail": "energy_uj is root-only", "fix": fix}]
    for dev in meta["devices"]:
        if dev["name"] == "cpu":
            dev["method"] = "modeled"
    (d / "meta.json").write_text(json.dumps(meta))
    p = report(d)
    assert p.returncode == 0, p.stderr
    assert "SUBSYSTEM==\"powercap\", MODE=\"0440\"\n" in p.stdout, p.stdout
    assert "?SUBSYSTEM" not in p.stdout


# ---- 6. options -------------------------------------------------------------------------


@pytest.mark.parametrize("args,says", [
    (["--period", "0"], "out of range"),
    (["--period", "0x10"], "not a decimal number"),
    (["--period", "inf"], "not a decimal number"),
    (["--period", "nan"], "not a decimal number"),
    (["--period", "-1"], "not a decimal number"),
    (["--period", "1e9"], "out of range"),
    (["--proc-period", "0"], "out of range"),
    (["--mem-period", "-5"], "not a decimal number"),
    (["--model-min-w", "5", "--model-max-w", "1"], "above"),
    (["--pid", "0"], "process id"),
    (["-o", "--"], "needs a path"),
    (["-o", "-q"], "needs a path"),
    (["--summary-json", "--json"], "needs a path"),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_bad_option_values_exit_2_with_the_range_and_run_nothing(tmp_path, wm, args, says):
    marker = tmp_path / "ran"
    p = run_wm(["run", *args, "--", "touch", str(marker)], cwd=tmp_path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert not marker.exists()
    assert not (tmp_path / "--").exists() and not (tmp_path / "wattmeter-runs").exists()
    assert says in p.stderr, p.stderr
    if "period" in args[0]:
        assert "0.0005 to 3600" in p.stderr, p.stderr


def test_help_states_the_ranges_and_exit_codes():
    p = run_wm(["run", "--help"])
    assert p.returncode == 0
    for s in ("0.0005 to 3600", "--summary-json FILE", "exit status", "125", "orphans", "-q, --quiet"):
        assert s in p.stdout, s


def test_man_page_is_installed_with_the_package():
    data = Path(sysconfig.get_path("data"))
    page = data / "share" / "man" / "man1" / "wattmeter.1"
    assert page.is_file(), f"no man page at {page}"
    text = page.read_text()
    for s in (".TH WATTMETER 1", "wattmeter run", "wattmeter report", "wattmeter sensors", "wattmeter serve", "\\-\\-summary\\-json",
              "EXIT STATUS"):
        assert s in text, s
    if shutil.which("groff"):
        g = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True)
        assert g.returncode == 0 and g.stderr == "", g.stderr


# ---- 7. live line ------------------------------------------------------------------------


def run_on_pty(args: List[str], rows: int = 24, cols: int = 120, timeout: float = 60) -> tuple:
    """Runs wattmeter with stdout and stderr on a pseudo-terminal; returns
    (exit code, everything written to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm")
    p = subprocess.Popen([WATTMETER, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                b = os.read(master, 65536)
            except OSError as e:
                if e.errno == errno.EIO:
                    break
                raise
            if not b:
                break
            chunks.append(b)
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    return rc, b"".join(chunks).decode("utf-8", "replace")


def test_live_line_shows_measured_watts_from_the_first_interval_on_the_bottom_row(tmp_path, fake_rapl, wm):
    fake = fake_rapl("intel-2pkg")
    want_cpu_w = fake.device_rates_w()["cpu"]
    out = tmp_path / "rec"
    rc, tty = run_on_pty(["run", "--sysfs-root", fake.root, "-o", str(out), "--",
                          PY, "-c", "import time\nfor i in range(6):\n print('line', i, flush=True); time.sleep(0.4)"])
    assert rc == 0, tty
    # the bottom row is taken out of the scrolling region, and given back
    assert "\x1b[1;23r" in tty and "\x1b[r" in tty, repr(tty[:300])
    draws = re.findall(r"\x1b7\x1b\[24;1H\x1b\[K(.*?)\x1b8", tty)
    assert draws, repr(tty[:500])
    watts = [float(m) for d in draws for m in re.findall(r"\| cpu ([0-9.]+) W", d)]
    assert watts, draws
    # the first figure shown is the measured power, not a smoothed one climbing from 0
    assert abs(watts[0] - want_cpu_w) <= 0.1 * want_cpu_w, (watts, want_cpu_w)
    # the command's lines all arrived, none of them glued to the status text
    for i in range(6):
        assert f"line {i}\r\n" in tty
    assert not re.search(r"W \| \d+ procs?line", tty)
    # the summary comes after the region is reset
    assert tty.rindex("\x1b[r") < tty.index("device  energy")


def test_no_live_line_when_stderr_is_not_a_terminal(tmp_path, wm):
    p = run_wm(["run", "-o", str(tmp_path / "rec"), *FAST, "--", "sleep", "1.2"])
    assert p.returncode == 0 and "\x1b" not in p.stderr and "[wattmeter]" not in p.stderr


# ---- issue 6: orphans and short commands --------------------------------------------------

BUSY = textwrap.dedent("""
    import os, sys, time
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pass
    t = os.times()
    with open(sys.argv[1], "w") as f:
        f.write(f"{os.getpid()} {t.user + t.system}")
""")


def test_a_double_forked_orphan_stays_measured_and_is_reaped(tmp_path, wm):
    busy = tmp_path / "busy.py"
    busy.write_text(BUSY)
    done = tmp_path / "done"
    out = tmp_path / "rec"
    p = subprocess.Popen([wm, "run", "-q", "-o", str(out), *FAST, "--", "sh", "-c",
                          f"({PY} {busy} {done} &); sleep 4; exit 3"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: done.exists() and done.read_text().count(" ") == 1, timeout=30)
        pid, cpu_s = done.read_text().split()
        # reaped by wattmeter (its subreaper) long before the command ends: no zombie left
        assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=2.5), \
            open(f"/proc/{pid}/stat").read()
    finally:
        _, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    s = report_json(out)
    assert pid in s["processes"], (pid, sorted(s["processes"]))
    got = s["processes"][pid]
    assert "busy.py" in got["cmdline"]
    assert got["cpu_s"] == pytest.approx(float(cpu_s), abs=0.3)


def test_a_command_shorter_than_the_process_period_is_recorded_under_its_own_name(tmp_path, wm):
    for i in range(3):
        out = tmp_path / f"rec{i}"
        pidfile = tmp_path / f"pid{i}"
        p = run_wm(["run", "-q", "-o", str(out), "--proc-period", "5", "--", "sh", "-c", f"echo $$ > {pidfile}"])
        assert p.returncode == 0, p.stderr
        s = report_json(out)
        pid = pidfile.read_text().strip()
        for q in s["processes"].values():
            assert "wattmeter" not in q["cmdline"], s["processes"]
        if pid in s["processes"]:
            assert s["processes"][pid]["cmdline"].startswith("sh"), s["processes"]


def test_recursive_decorated_function_runs_and_is_measured_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @wattmeter.Meter(period=0.05)
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact(n - 1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fact(5) == 120
    assert len(list((tmp_path / "wattmeter-runs").iterdir())) == 1


def test_loading_a_missing_recording_gives_advice_a_python_user_can_follow(tmp_path):
    with pytest.raises(FileNotFoundError) as ei:
        wattmeter.load(str(tmp_path / "missing"))
    assert "Meter(output_dir)" in str(ei.value), str(ei.value)


def test_man_page_names_every_command_and_option_of_the_help():
    """The man page is kept in step with `--help`: every command of the
    table and every long option of each command's help is in it."""
    page = (Path(sysconfig.get_path("data")) / "share" / "man" / "man1" / "wattmeter.1").read_text()
    text = page.replace("\\-", "-")
    top = run_wm(["--help"]).stdout
    cmds = re.findall(r"^  ([a-z]+) ", top, flags=re.M)
    assert {"run", "report", "sensors"} <= set(cmds), top
    for c in cmds:
        assert f"wattmeter {c}" in text, c
        helptext = run_wm([c, "--help"]).stdout
        for opt in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z.-]*[a-z])", helptext))):
            assert opt in text, f"wattmeter {c} {opt} is not in the man page"
