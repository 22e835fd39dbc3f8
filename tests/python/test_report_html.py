"""`wattmeter report --html`, several runs side by side, carbon and cost: on
real recordings made by `wattmeter run` over a fake powercap tree whose
counters advance at known rates (tests/fixtures/fake_rapl.py), so every
figure is checked against rate x duration, not against what the code
computed. Ends with a headless Chromium screenshot of the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import FAST, py_cmd, report_json, run_wm

RATES = {"cpu": 50.0, "dram": 10.0, "psys": 70.0}  # intel-2pkg defaults (W)
FR_G_PER_KWH = 56.04  # Ember 2023, the shipped table's figure for France


def record(fake, out: Path, code: str = "import time\ntime.sleep(1.5)", extra=()) -> dict:
    p = run_wm(["run", "-q", "--sysfs-root", fake.root, "-o", str(out), *FAST, "--", *py_cmd(code), *extra])
    assert p.returncode == 0, p.stderr
    return report_json(out)


def html_of(args, tmp_path: Path, name: str = "r.html") -> str:
    f = tmp_path / name
    p = run_wm(["report", *args, "--html", str(f)])
    assert p.returncode == 0, p.stderr
    assert str(f) in p.stderr and p.stdout == ""
    return f.read_text(encoding="utf-8")


def si_joules(text: str) -> float:
    """'305.6 J' / '1.23 kJ' -> joules"""
    m = re.fullmatch(r"([\d.]+) (k|M)?J(?: \(.*\))?", text.strip())
    assert m, text
    return float(m.group(1)) * {None: 1, "k": 1e3, "M": 1e6}[m.group(2)]


def device_cell(html: str, dev: str) -> float:
    m = re.search(rf"<tr><td>{dev}</td><td class=\"n\">([^<]+)</td>", html)
    assert m, f"no row for {dev}"
    return si_joules(m.group(1))


def assert_no_active_content(html: str) -> None:
    low = html.lower()
    assert "<script" not in low
    assert "http://" not in low and "https://" not in low
    for bad in ("<link", "<img", "<iframe", "<object", "<embed", "url(", "@import"):
        assert bad not in low, bad
    # no attribute that loads or runs anything, in any real tag
    assert re.search(r"<[a-z]+[^>]*\s(on[a-z]+|src|href)=", low.replace('href="#run', 'x="#run')) is None
    assert "content=\"default-src 'none'" in html  # scripts and fetches forbidden


def test_html_report_has_the_known_energies_plots_and_carbon(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg")
    assert fake.device_rates_w() == RATES
    out = tmp_path / "rec"
    s = record(fake, out, "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass")
    dur = s["duration_s"]
    html = html_of([str(out), "--grid-intensity", "FR", "--pue", "1.5", "--price", "0.30", "--currency", "EUR"],
                   tmp_path)
    assert_no_active_content(html)
    for dev, rate in RATES.items():
        assert device_cell(html, dev) == pytest.approx(rate * dur, rel=0.03), dev
    # machine = psys (it holds cpu and dram); kWh with PUE, CO2e and cost by hand
    kwh = RATES["psys"] * dur * 1.5 / 3.6e6
    carbon = html[html.index("Energy, carbon and cost"):]
    m = re.search(r"<th>CO2e</th><td class=\"n\">([\d.e+-]+) g CO2e</td>", carbon)
    assert m and float(m.group(1)) == pytest.approx(kwh * FR_G_PER_KWH, rel=0.03)
    m = re.search(r"<th>cost</th><td class=\"n\">([\d.e+-]+) EUR</td>", carbon)
    assert m and float(m.group(1)) == pytest.approx(kwh * 0.30, rel=0.03)
    assert "France (FR) 2023, Ember Yearly Electricity Data" in html
    assert "0.3 EUR/kWh, user-given" in html
    # plots: one power plot per device, with the attributed part shaded on cpu,
    # and the energy-per-process bars
    assert html.count('aria-label="power over time"') == 3
    assert html.count("<polyline") == 3
    cpu_plot = html[html.index("<h3>cpu"):html.index("<h3>dram")]
    assert 'fill-opacity="0.45"' in cpu_plot
    assert "Energy per process" in html and "<rect" in html
    assert "measured" in html and "rapl-powercap" in html
    # the JSON says the same, with the provenance of the intensity
    p = run_wm(["report", str(out), "--json", "--grid-intensity", "FR", "--pue", "1.5", "--price", "0.30",
                "--currency", "EUR"])
    c = json.loads(p.stdout)["carbon"]
    assert c["basis"] == ["psys"]
    assert c["kwh"] == pytest.approx(kwh, rel=0.03)
    assert c["co2e_g"] == pytest.approx(kwh * FR_G_PER_KWH, rel=0.03)
    assert c["grid_intensity_g_per_kwh"] == FR_G_PER_KWH
    assert c["grid_intensity_source"] == "France (FR) 2023, Ember Yearly Electricity Data"
    assert c["cost"] == pytest.approx(kwh * 0.30, rel=0.03) and c["currency"] == "EUR"


def test_no_intensity_means_no_co2_figure_and_a_hint(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg")
    out = tmp_path / "rec"
    s = record(fake, out)
    c = s["carbon"]
    assert c["co2e_g"] is None and c["grid_intensity_g_per_kwh"] is None and c["cost"] is None
    assert "--grid-intensity" in c["note"]
    assert c["kwh"] == pytest.approx(RATES["psys"] * s["duration_s"] / 3.6e6, rel=0.03)
    text = run_wm(["report", str(out)]).stdout
    assert "kWh" in text and "--grid-intensity" in text and "g CO2e" not in text
    html = html_of([str(out)], tmp_path)
    assert "g CO2e" not in html and "--grid-intensity" in html
    # a user-given figure is labelled so
    t = run_wm(["report", str(out), "--grid-intensity", "475"]).stdout
    assert "475 gCO2e/kWh (user-given)" in t


def test_hostile_command_and_process_names_are_escaped(fake_rapl, tmp_path):
    """A process named like markup cannot add an element to the report."""
    fake = fake_rapl("intel-2pkg")
    evil = tmp_path / "<img src=x onerror=alert(1)>"
    evil.symlink_to(shutil.which("sleep"))  # comm comes from the name exec'd
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "--sysfs-root", fake.root, "-o", str(out), *FAST, "--",
                str(evil), "1", "<script>alert(2)</script>"])
    assert (out / "meta.json").exists(), p.stderr  # sleep rejects the second operand; the recording stands
    html = html_of([str(out)], tmp_path)
    assert_no_active_content(html)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_several_runs_side_by_side(fake_rapl, tmp_path):
    fake = fake_rapl("intel-2pkg")
    a, b = tmp_path / "short", tmp_path / "long"
    sa = record(fake, a, "import time\ntime.sleep(0.6)")
    sb = record(fake, b, "import time\ntime.sleep(1.6)")
    text = run_wm(["report", str(a), str(b), "--grid-intensity", "DE"])
    assert text.returncode == 0, text.stderr
    assert "2 recordings compared" in text.stdout and str(a) in text.stdout and str(b) in text.stdout
    assert "Germany (DE) 2023" in text.stdout
    j = json.loads(run_wm(["report", str(a), str(b), "--json"]).stdout)
    assert j["devices"] == ["cpu", "dram", "psys"]
    assert [r["dir"] for r in j["runs"]] == [str(a), str(b)]
    for r, s in zip(j["runs"], (sa, sb)):
        assert r["summary"]["energy_j"]["psys"] == pytest.approx(RATES["psys"] * s["duration_s"], rel=0.03)
    html = html_of([str(a), str(b)], tmp_path)
    assert_no_active_content(html)
    assert "2 runs side by side" in html
    assert html.count('<section id="run') == 2
    grouped = html[html.index("2 runs side by side"):html.index('<section id="run1"')]
    assert grouped.count("<rect") >= 6  # 3 devices x 2 runs


@pytest.mark.parametrize("args, fragment", [
    (["--pue", "0.8"], "1.0 to 5.0"),
    (["--grid-intensity", "5000"], "0 to 2000"),
    (["--grid-intensity", "XX"], "--list-grids"),
    (["--price", "-1", "--currency", "EUR"], "0 to 1000"),
    (["--price", "0.2"], "--currency"),
    (["--currency", "EURO", "--price", "1"], "three-letter"),
    (["--top", "-3"], "0 to 100000"),
])
def test_bad_values_exit_2_naming_the_range(tmp_path, args, fragment):
    p = run_wm(["report", str(tmp_path), *args])
    assert p.returncode == 2, p.stderr
    assert fragment in p.stderr
    assert p.stdout == ""


def test_help_lists_every_option_and_list_grids_names_its_source():
    p = run_wm(["report", "--help"])
    assert p.returncode == 0
    for opt in ("--json", "--columns", "--html", "--top", "--grid-intensity", "--pue", "--price", "--currency",
                "--list-grids", "--help"):
        assert opt in p.stdout, opt
    g = run_wm(["report", "--list-grids"])
    assert g.returncode == 0 and "Ember" in g.stdout and "FRA" in g.stdout and "2023" in g.stdout
    p = run_wm(["report", "a", "b", "--columns"])
    assert p.returncode == 2 and "one DIR" in p.stderr


# ---- headless Chromium ------------------------------------------------------------


def png_pixels(path: Path):
    """(width, height, channels, rows) of an 8-bit RGB/RGBA PNG, rows unfiltered
    (standard library only: zlib and the five PNG filters)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b, c = prev[i], prev[i - ch] if i >= ch else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def test_chromium_renders_the_report(fake_rapl, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    fake = fake_rapl("intel-2pkg")
    out = tmp_path / "rec"
    record(fake, out, "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass")
    report = tmp_path / "report.html"
    html_of([str(out), "--grid-intensity", "FR"], tmp_path, "report.html")
    png = tmp_path / "shot.png"
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={home / 'profile'}", f"--screenshot={png}", "--window-size=1000,1400",
                        report.as_uri()], capture_output=True, text=True, timeout=120, env=env,
                       stdin=subprocess.DEVNULL)
    assert png.exists(), f"no screenshot (rc {p.returncode}): {p.stderr[-2000:]}"
    w, h, ch, rows = png_pixels(png)
    assert (w, h) == (1000, 1400)
    nonwhite = blue = 0
    for row in rows[::2]:
        for x in range(0, w * ch, ch * 2):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r < 240 or g < 240 or b < 240:
                nonwhite += 1
            # the cpu plot's colour (#4e79a7) and its shades: the plots were drawn
            if abs(r - 0x4e) < 12 and abs(g - 0x79) < 12 and abs(b - 0xa7) < 12:
                blue += 1
    sampled = (h // 2) * (w // 2)
    assert nonwhite > sampled * 0.03, f"page looks blank: {nonwhite} of {sampled} sampled pixels not white"
    assert blue > 100, f"no plot drawn in the cpu colour ({blue} pixels)"


def test_html_compare_and_carbon_paths_under_valgrind(fake_rapl, tmp_path):
    """The new report paths: no invalid access, nothing definitely lost."""
    from test_valgrind import VALGRIND, vg

    if not VALGRIND:
        pytest.skip("valgrind not installed")
    fake = fake_rapl("intel-2pkg")
    a, b = tmp_path / "a", tmp_path / "b"
    record(fake, a, "import time\ntime.sleep(0.5)")
    record(fake, b, "import time\ntime.sleep(0.5)")
    logs = tmp_path / "vg"
    logs.mkdir()
    carbon = ["--grid-intensity", "FR", "--pue", "1.1", "--price", "0.2", "--currency", "EUR"]
    for i, args in enumerate([[str(a), "--html", str(tmp_path / "a.html"), *carbon],
                              [str(a), str(b), "--html", str(tmp_path / "ab.html")],
                              [str(a), str(b), *carbon],
                              [str(a), str(b), "--json", *carbon],
                              [str(a), *carbon],
                              [str(a), "--pue", "0.5"]]):
        p = vg(["report", *args], logs, f"report{i}")
        assert p.returncode == (2 if "0.5" in args else 0), p.stderr
