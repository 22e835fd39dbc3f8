"""Windows of work (issue 17): on a fake RAPL tree whose counters advance at
known rates, a window's energy is rate x its own duration — read at its
edges, not cut at samples — for windows from 50 ms to 3 s at a 1 s period,
overlapping and nested, from several threads; counts give joules per count;
marks carry the cumulative energy; a forked child is refused."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

import wattmeter

PERIOD_S = 1.0
FIXTURE_STEP_S = 0.001  # the fake tree rewrites its counters every 1 ms
REL = 0.005             # 0.5 %


def read_windows(d):
    with open(os.path.join(d, "windows.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(x) for x in f]
    return lines[0], lines[1:]


def expect(rate_w: float, dur_s: float) -> tuple:
    """rate x duration, and the tolerance: 0.5 % plus one counter step at
    each edge (the value read may be up to one step stale) plus the edge
    read's lag on this loaded machine, bounded by read_lag_s below."""
    return rate_w * dur_s, REL * rate_w * dur_s + 2 * rate_w * FIXTURE_STEP_S


@pytest.fixture
def fake(fake_rapl):
    # a 150 J range: psys (70 W) wraps in ~2.1 s, inside the 3 s window, but
    # not twice within the 1 s period (which no meter could count)
    f = fake_rapl("intel-2pkg", start=False, max_range_uj=150_000_000)
    f.start(interval_s=FIXTURE_STEP_S)
    return f


def meter_on(fake, tmp_path, **kw):
    return wattmeter.Meter(str(tmp_path / "rec"), PERIOD_S, sysfs_root=fake.root, no_gpu=True, **kw)


def check_energy(w, rates):
    """Every counted device's window energy against rate x the window's own
    duration; the edge read lag (time from the edge to its read) is small."""
    assert w["read_lag_s"] < 0.02, w
    for dev, rate in rates.items():
        want, tol = expect(rate, w["duration_s"])
        tol += rate * w["read_lag_s"]
        got = w["energy_j"][dev]
        assert abs(got - want) <= tol, f"{w['name']} {dev}: {got:.5f} J, want {want:.5f} ± {tol:.5f} J " \
                                       f"({w['duration_s']:.4f} s)"


def test_windows_50ms_to_3s_nested_and_overlapping_match_rate_times_duration(fake, tmp_path):
    rates = fake.device_rates_w()  # cpu 50 W, dram 10 W, psys 70 W
    durations = [0.05, 0.1, 0.25, 0.5, 1.0]
    truth = {}
    with meter_on(fake, tmp_path) as m:
        with m.window("outer", phase="all") as outer:          # ~3 s, holds the rest
            t_outer = time.monotonic()
            for i, d in enumerate(durations):
                t = time.monotonic()
                with m.window("step", step=i) as w:             # nested in outer
                    time.sleep(d)
                    w.count(samples=8, tokens=100 * (i + 1))
                truth[("step", i)] = time.monotonic() - t
            a = m.window("a").begin()                            # a and b overlap
            time.sleep(0.2)
            b = m.window("b").begin()
            time.sleep(0.3)
            a.end()
            time.sleep(0.1)
            b.end()
            rest = 3.0 - (time.monotonic() - t_outer)
            if rest > 0:
                time.sleep(rest)
            outer.count(steps=len(durations))
        truth["outer"] = time.monotonic() - t_outer
        m.mark("checkpoint", epoch=1)
    head, lines = read_windows(m.dir)
    assert head["windows_version"] == 1 and head["devices"][:3] == ["cpu", "dram", "psys"]
    ends = [x for x in lines if x["event"] == "end"]
    assert sorted(x["name"] for x in ends) == ["a", "b", "outer"] + ["step"] * len(durations)
    for w in ends:
        assert "open" not in w
        check_energy(w, rates)
    steps = sorted((x for x in ends if x["name"] == "step"), key=lambda x: x["attrs"]["step"])
    for i, w in enumerate(steps):
        # the window's duration is the caller's: within a millisecond or two of Python's own clock
        assert abs(w["duration_s"] - truth[("step", i)]) < 0.003, (w["duration_s"], truth[("step", i)])
        assert w["duration_s"] >= durations[i]
        assert w["counts"] == {"samples": 8, "tokens": 100 * (i + 1)}
        # cpu + dram (psys overlaps them: not added) per count
        tot = w["energy_j"]["cpu"] + w["energy_j"]["dram"]
        assert w["total_j"] == pytest.approx(tot, abs=1e-5)
        assert w["j_per"]["tokens"] == pytest.approx(tot / (100 * (i + 1)), rel=1e-6)
        assert w["j_per"]["samples"] == pytest.approx(tot / 8, rel=1e-6)
    # a 50 ms window at a 1 s period: no sample falls inside it, yet its energy is exact (above)
    assert steps[0]["duration_s"] < PERIOD_S / 10
    outer_w = next(x for x in ends if x["name"] == "outer")
    assert outer_w["duration_s"] == pytest.approx(truth["outer"], abs=0.01)
    a_w = next(x for x in ends if x["name"] == "a")
    b_w = next(x for x in ends if x["name"] == "b")
    assert a_w["start_s"] < b_w["start_s"] < a_w["end_s"] < b_w["end_s"]
    marks = [x for x in lines if x["event"] == "mark"]
    assert [x["name"] for x in marks] == ["checkpoint"] and marks[0]["attrs"] == {"epoch": 1}
    # the mark's cumulative energy is rate x its time since the start (in the samples' frame)
    want, tol = expect(rates["cpu"], marks[0]["t_s"])
    assert abs(marks[0]["energy_j"]["cpu"] - want) <= tol + 0.05 * rates["cpu"]


def test_windows_from_threads_and_async_and_decorators(fake, tmp_path):
    rates = fake.device_rates_w()
    with meter_on(fake, tmp_path) as m:
        @m.window("work")
        def work(d):
            time.sleep(d)

        @m.window("awork", kind="async")
        async def awork(d):
            await asyncio.sleep(d)

        ts = [threading.Thread(target=work, args=(0.05 + 0.05 * k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        asyncio.run(awork(0.15))

        async def block():
            async with m.window("ablock") as w:
                await asyncio.sleep(0.08)
                w.count(tokens=3)
        asyncio.run(block())
    _, lines = read_windows(m.dir)
    ends = [x for x in lines if x["event"] == "end"]
    assert sorted(x["name"] for x in ends) == ["ablock", "awork"] + ["work"] * 4
    for w in ends:
        check_energy(w, rates)
    assert next(x for x in ends if x["name"] == "awork")["attrs"] == {"kind": "async"}
    assert next(x for x in ends if x["name"] == "ablock")["counts"] == {"tokens": 3}


def test_window_open_at_stop_is_reported_open(fake, tmp_path):
    rates = fake.device_rates_w()
    m = meter_on(fake, tmp_path).start()
    m.window("never-closed", epoch=0).begin()
    time.sleep(0.3)
    m.stop()
    _, lines = read_windows(m.dir)
    (w,) = [x for x in lines if x["event"] == "end"]
    assert w["open"] is True and "still open" in " ".join(w["notes"])
    assert w["duration_s"] > 0.3
    check_energy(w, rates)


def test_bad_input_and_forked_child_are_refused(fake, tmp_path):
    with meter_on(fake, tmp_path) as m:
        with pytest.raises(ValueError):
            m.window("")
        with pytest.raises(ValueError):
            m.window("x").count(tokens=-1)
        pid = os.fork()
        if pid == 0:  # a DataLoader worker, say: refused with a message, never a second recording
            code = 1
            try:
                m.window("child").begin()
            except OSError as e:
                code = 0 if "forked child" in str(e) else 2
            os._exit(code)
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    with pytest.raises(RuntimeError):
        m.window("after").begin()
    # nothing was recorded: no windows.jsonl (the child's refused edge never reached the meter)
    assert not os.path.exists(os.path.join(m.dir, "windows.jsonl"))
    assert m.results.windows(frame=False) == []


def test_results_windows_rows_groups_and_a_killed_run(fake, tmp_path):
    """Results.windows() and window_stats() read windows.jsonl through the C
    reader; a window begun in a run killed with SIGKILL is reported open up to
    the last sample, with rate x (last sample - begin) as its energy."""
    rates = fake.device_rates_w()
    with meter_on(fake, tmp_path) as m:
        for i in range(5):
            with m.window("step", step=i) as w:
                time.sleep(0.02 * (i + 1))
                w.count(tokens=10)
        with m.window("eval"):
            time.sleep(0.05)
    r = m.results
    rows = r.windows(frame=False)
    assert [x["name"] for x in rows] == ["step"] * 5 + ["eval"]
    assert [x["step"] for x in rows[:5]] == list(range(5))
    for x in rows:
        assert x["energy_j"] == pytest.approx(x["energy_j.cpu"] + x["energy_j.dram"], abs=1e-5)
        want, tol = expect(rates["cpu"] + rates["dram"], x["duration_s"])
        assert abs(x["energy_j"] - want) <= tol + 0.02 * (rates["cpu"] + rates["dram"])
    assert rows[0]["j_per_tokens"] == pytest.approx(rows[0]["energy_j"] / 10, rel=1e-6)
    df = r.windows("step")
    assert list(df["step"]) == list(range(5)) and "energy_j.psys" in df.columns
    (g,) = r.window_stats("step")
    es = sorted(x["energy_j"] for x in rows[:5])
    assert g["count"] == 5 and g["tokens"] == 50
    assert g["total_j"] == pytest.approx(sum(es), rel=1e-6)
    assert g["mean_j"] == pytest.approx(sum(es) / 5, rel=1e-6)
    assert g["p50_j"] == pytest.approx(es[2], rel=1e-6) and g["p99_j"] == pytest.approx(es[4], rel=1e-6)
    assert g["j_per_tokens"] == pytest.approx(sum(es) / 50, rel=1e-6)
    assert [x["name"] for x in r.window_stats()] == ["step", "eval"]

    # a child process with its own meter, killed mid-window
    import signal
    import subprocess
    import sys
    out = tmp_path / "killed"
    code = (f"import time, wattmeter\n"
            f"m = wattmeter.Meter({str(out)!r}, 0.1, sysfs_root={fake.root!r}, no_gpu=True).start()\n"
            f"m.window('train', epoch=7).begin()\n"
            f"m.flush_windows()\n"
            f"print('open', flush=True)\n"
            f"time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "open"
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    (w,) = wattmeter.load(str(out)).windows(frame=False)
    assert w["open"] is True and w["epoch"] == 7 and "killed" in " ".join(w["notes"])
    assert w["duration_s"] > 0.8
    want, tol = expect(rates["cpu"], w["duration_s"])
    assert abs(w["energy_j.cpu"] - want) <= tol + rates["cpu"] * 0.01


def test_report_windows_table_list_and_json(fake, tmp_path):
    from conftest import run_wm
    with meter_on(fake, tmp_path) as m:
        for i in range(3):
            with m.window("step", step=i) as w:
                time.sleep(0.03)
                w.count(tokens=4)
        with m.window("eval"):
            time.sleep(0.03)
    rows = m.results.windows(frame=False)
    p = run_wm(["report", m.dir])
    assert p.returncode == 0, p.stderr
    table = p.stdout[p.stdout.index("Windows"):]
    step_line = next(x for x in table.splitlines() if x.strip().startswith("step"))
    cols = step_line.split()
    assert cols[1] == "3"
    total = sum(x["energy_j"] for x in rows if x["name"] == "step")
    assert float(cols[2]) == pytest.approx(total, abs=1e-3)
    assert "J/tokens" in step_line and any(x.strip().startswith("eval") for x in table.splitlines())
    p = run_wm(["report", m.dir, "--windows", "step"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Windows named 'step': 3") and '{"step":2}' in p.stdout
    p = run_wm(["report", m.dir, "--windows", "step", "--json"])
    doc = json.loads(p.stdout)
    assert [w["attrs"]["step"] for w in doc["windows"]] == [0, 1, 2] and doc["groups"][0]["count"] == 3
    s = json.loads(run_wm(["report", m.dir, "--json"]).stdout)
    assert [g["name"] for g in s["windows"]["groups"]] == ["step", "eval"]
    assert s["energy_j"]["cpu"] > 0  # the summary itself is intact


def test_html_report_shades_windows_and_tables_them(fake, tmp_path):
    from conftest import run_wm
    with meter_on(fake, tmp_path) as m:
        time.sleep(0.3)
        with m.window("phase-a"):
            time.sleep(0.6)
        with m.window("phase-b") as w:
            time.sleep(0.6)
            w.count(tokens=10)
        time.sleep(0.3)
    html = tmp_path / "r.html"
    p = run_wm(["report", m.dir, "--html", str(html)])
    assert p.returncode == 0, p.stderr
    text = html.read_text()
    assert "Energy per window" in text and "phase-a" in text and "J/tokens" in text
    # two windows shaded on each device's power plot (cpu, dram, psys)
    assert text.count('class="window"') == 2 * 3
    # a recording without windows has neither
    p = run_wm(["run", "-q", "--sysfs-root", fake.root, "--no-gpu", "-o", str(tmp_path / "plain"), "--", "true"])
    assert p.returncode == 0, p.stderr
    p = run_wm(["report", str(tmp_path / "plain"), "--html", str(tmp_path / "p.html")])
    assert p.returncode == 0 and "Energy per window" not in (tmp_path / "p.html").read_text()


def test_report_compares_runs_by_joules_per_step_and_per_token(fake, tmp_path):
    from conftest import run_wm
    dirs = []
    for k, (n, d) in enumerate([(3, 0.05), (2, 0.1)]):
        m = wattmeter.Meter(str(tmp_path / f"run{k}"), PERIOD_S, sysfs_root=fake.root, no_gpu=True)
        with m:
            for i in range(n):
                with m.window("step", step=i) as w:
                    time.sleep(d)
                    w.count(tokens=10)
        dirs.append(m.dir)
    stats = [wattmeter.load(d).window_stats("step")[0] for d in dirs]
    p = run_wm(["report", *dirs])
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.strip().startswith("step"))
    assert "[1]" in line and "[2]" in line and "x3" in line and "x2" in line
    assert f"{stats[0]['j_per_tokens']:.4g} J/tokens" in line and f"{stats[1]['j_per_tokens']:.4g} J/tokens" in line
    # the second run's steps last twice as long: about twice the joules per token
    assert stats[1]["j_per_tokens"] == pytest.approx(2 * stats[0]["j_per_tokens"], rel=0.15)
    doc = json.loads(run_wm(["report", *dirs, "--json"]).stdout)
    assert [r["groups"][0]["count"] for r in doc["windows"]] == [3, 2]
