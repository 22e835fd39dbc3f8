"""A disk that fills during a run (docs/recording.md "When the disk fills").

A real small tmpfs, mounted in a private mount namespace (`unshare -m`), holds
the recording; the measured command itself fills it with a filler file and
later deletes it. The truths are independent of wattmeter: the fake RAPL
counter's known rate (tests/fixtures/fake_rapl.py) for the energy, the wall
clock the filler notes when the disk is full and when it frees it for the
span, and the bytes of samples.jsonl for "every line reads".

Before: the line in flight when the disk filled stayed cut, the next line
was glued to it, and `report` called the whole recording damaged ("line N
is not valid JSON"); the run's own summary was "cannot summarise"."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PY, WATTMETER, read_meta

PERIOD = 0.02
RATE_W = 25.0

FILLER = r'''
import json, os, subprocess, sys, time
mnt, out, free_after, tail = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
time.sleep(0.8)
times = {"fill_unix_s": time.time()}
fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        os.write(fd, b"\0" * 65536)
except OSError:
    pass
try:
    while True:
        os.write(fd, b"\0" * 512)
except OSError:
    pass
os.close(fd)
times["full_unix_s"] = time.time()
# a process first seen while nothing can be written: its command line must
# still reach the recording
subprocess.run([sys.executable, "-c", "import time; time.sleep(0.5)", "gap-child-marker"])
time.sleep(max(0.0, free_after - (time.time() - times["full_unix_s"])))
if tail >= 0:
    times["free_unix_s"] = time.time()
    os.unlink(os.path.join(mnt, "filler"))
    time.sleep(tail)
with open(os.path.join(out, "times.json"), "w") as f:
    json.dump(times, f)
'''


def run_in_small_tmpfs(tmp_path: Path, fake, free_after: float, tail: float) -> Path:
    """Runs `wattmeter run -o MNT/rec -- filler` on a 2 MiB tmpfs of its own;
    returns a folder holding the copied recording, the run's stderr and exit
    status, `report --json` and `report` of it (run inside the namespace,
    where the tmpfs is)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    (tmp_path / "filler.py").write_text(FILLER)
    script = r'''
set -u
mount -t tmpfs -o size=2m,mode=0755 tmpfs "$MNT" || exit 97
"$WM" run --sysfs-root "$SYS" -o "$MNT/rec" --period "$PERIOD" --proc-period 0.1 -- \
    "$PY" "$FILLER" "$MNT" "$OUT" "$FREE_AFTER" "$TAIL" 2> "$OUT/run.err"
echo $? > "$OUT/run.rc"
"$WM" report "$MNT/rec" --json > "$OUT/report.json" 2> "$OUT/report.err"
echo $? > "$OUT/report.rc"
"$WM" report "$MNT/rec" > "$OUT/report.txt" 2>&1
cp -a "$MNT/rec" "$OUT/rec"
'''
    env = dict(os.environ, MNT=str(mnt), OUT=str(out), WM=WATTMETER, SYS=fake.root, PY=PY,
               FILLER=str(tmp_path / "filler.py"), PERIOD=str(PERIOD), FREE_AFTER=str(free_after),
               TAIL=str(tail))
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if p.returncode == 97:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr}")
    assert p.returncode == 0, p.stderr
    return out


def lines_of(rec: Path):
    raw = (rec / "samples.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "samples.jsonl ends in a cut line"
    return [json.loads(x) for x in raw.decode().splitlines()]  # every line parses


def check_common(out: Path):
    rc = int((out / "run.rc").read_text())
    err = (out / "run.err").read_text()
    assert rc == 0, err
    assert int((out / "report.rc").read_text()) == 0, (out / "report.err").read_text()
    s = json.loads((out / "report.json").read_text())
    rec = out / "rec"
    lines = lines_of(rec)
    assert s["samples"] == len(lines) and s["truncated"] is False and s["complete"] is True
    # the energy over the whole run, the gap included: the counter's rate
    want = RATE_W * s["duration_s"]
    assert abs(s["energy_j"]["cpu"] - want) <= 0.02 * want, (s["energy_j"]["cpu"], want)
    assert s["method"]["cpu"] == "measured"
    # the command first seen during the gap keeps its command line
    cmdlines = [p["cmdline"] for p in s["processes"].values()]
    assert any("gap-child-marker" in c for c in cmdlines), cmdlines
    return s, lines, err


def check_spans(s, lines, times, meta, freed: bool):
    """The spans named cover the time the disk was full, each with its
    marker on the next line written; returns the longest one. While the
    filler races the recorder for the last free pages, a line may get
    through between two short spans: several spans are the truth then."""
    spans = s["unwritten"]
    assert spans and spans == sorted(spans, key=lambda g: g["from_s"])
    for g in spans:
        assert g["error"] == "No space left on device" and g["resumed"] is True, g
    start = lambda k: times[k] - meta["start_unix_s"]  # noqa: E731
    # the file's last page may take a few more lines after the filler hit
    # ENOSPC; nothing is lost before the filler began
    assert start("fill_unix_s") - 0.05 <= spans[0]["from_s"] <= start("full_unix_s") + 1.0, spans
    if freed:
        assert start("free_unix_s") - 0.2 <= spans[-1]["to_s"] <= start("free_unix_s") + 0.1, spans
    t = [x["t_s"] for x in lines]
    for g in spans:
        after = next(i for i, x in enumerate(t) if x > g["to_s"])
        assert t[after - 1] < g["from_s"]
        assert lines[after]["unwritten"]["from_s"] == g["from_s"]
        assert lines[after]["unwritten"]["samples"] == g["samples"]
    assert sum("unwritten" in x for x in lines) == len(spans)
    # the counts are the lines missing: the sampler's own count of samples
    # taken is the lines written plus those named
    assert meta["self"]["samples"] == len(lines) + sum(g["samples"] for g in spans)
    assert meta["unwritten"] == spans
    return max(spans, key=lambda g: g["to_s"] - g["from_s"])


def test_a_disk_that_fills_and_frees_costs_lines_not_the_recording(fake_rapl, tmp_path):
    """Full for 1.5 s mid-run, then freed: every line left reads, the energy
    over the whole run is the counter's, and the summary names the span."""
    fake = fake_rapl("amd-1pkg", rates_w={"package-0": RATE_W, "package-0/core": 10.0})
    out = run_in_small_tmpfs(tmp_path, fake, free_after=1.5, tail=1.0)
    s, lines, err = check_common(out)
    times = json.loads((out / "times.json").read_text())
    meta = read_meta(out / "rec")
    g = check_spans(s, lines, times, meta, freed=True)
    assert g["to_s"] - g["from_s"] > 1.0
    assert lines[-1]["t_s"] > s["unwritten"][-1]["to_s"] + 0.5  # appending resumed
    # the run's own summary and `report` both name it
    for text in (err, (out / "report.txt").read_text()):
        assert "could not be written to samples.jsonl (No space left on device)" in text, text
        assert f"from {g['from_s']:.2f} s to {g['to_s']:.2f} s" in text
        assert "cannot summarise" not in text and "killed" not in text


def test_a_disk_still_full_at_the_end_keeps_the_totals_and_the_end(fake_rapl, tmp_path):
    """Never freed: the space set aside at the start takes the last line (the
    final totals) and the final meta.json, so the run is complete and its
    energy whole."""
    fake = fake_rapl("amd-1pkg", rates_w={"package-0": RATE_W, "package-0/core": 10.0})
    out = run_in_small_tmpfs(tmp_path, fake, free_after=1.5, tail=-1)
    s, lines, err = check_common(out)
    times = json.loads((out / "times.json").read_text())
    meta = read_meta(out / "rec")
    check_spans(s, lines, times, meta, freed=False)
    assert "unwritten" in lines[-1] and lines[-1]["t_s"] == pytest.approx(s["duration_s"], abs=0.05)
    assert "could not be written" in err and "incomplete" not in err, err
