"""The README's first command: the demo workload (a parent and two worker
processes) runs under wattmeter and its energy is spread over all three."""

from __future__ import annotations

from conftest import PY, REPO, read_meta, report_json, run_wm


def test_demo_attributes_energy_to_parent_and_two_workers(tmp_path):
    out = tmp_path / "rec"
    p = run_wm(["run", "-q", "-o", str(out), "--period", "0.05", "--proc-period", "0.2", "--",
                PY, str(REPO / "examples" / "demo.py"), "1"], timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("demo: counted ") and p.stdout.count("\n") == 1
    # -q: no live line (no terminal escapes); the summary and its location are still there
    assert "\033" not in p.stderr and f"recording: {out}" in p.stderr
    s = report_json(out)
    with_energy = {pid: x for pid, x in s["processes"].items() if x["energy_j"]["cpu"] > 0}
    assert len(with_energy) >= 3, s["processes"]
    root = str(read_meta(out)["pids"][0])
    assert root in with_energy
    workers = [x for pid, x in with_energy.items() if pid != root]
    assert sum(1 for x in workers if x["cpu_s"] > 0.1) >= 2  # each worker counts primes for 1 s
    assert s["energy_j"]["cpu_attributed"] > 0
