"""The `report` and `sensors` commands, help and version: what a user sees
when something is missing, forbidden or fine."""

from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest

import wattmeter
from conftest import FAST, FakeRapl, read_meta, report_json, run_wm


# ---- report ---------------------------------------------------------------------


def test_report_on_a_missing_folder_fails_naming_it(tmp_path):
    missing = tmp_path / "never-recorded"
    for args in (["report", str(missing)], ["report", str(missing), "--json"]):
        p = run_wm(args)
        assert p.returncode != 0
        assert str(missing) in p.stderr
        assert p.stdout == ""


def test_report_on_a_folder_without_meta_json_names_meta_json(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run_wm(["report", str(empty)])
    assert p.returncode != 0
    assert "meta.json" in p.stderr and str(empty) in p.stderr


def test_report_text_and_json_describe_the_same_recording(tmp_path):
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), *FAST, "--", "sleep", "0.5"]).returncode == 0
    s = report_json(out)
    assert s["schema_version"] == 1 and s["complete"] is True
    assert s["command"] == ["sleep", "0.5"]
    assert s["samples"] >= 5
    text = run_wm(["report", str(out)])
    assert text.returncode == 0
    assert "cpu" in text.stdout and "sleep 0.5" in text.stdout
    assert text.stderr == ""
    cols = run_wm(["report", str(out), "--columns"])
    assert cols.returncode == 0
    c = json.loads(cols.stdout)
    assert len(c["t_s"]) == len(c["energy_j.cpu"]) >= 5


def test_report_refuses_a_newer_schema_naming_both_versions(tmp_path):
    out = tmp_path / "rec"
    assert run_wm(["run", "-q", "-o", str(out), "--", "true"]).returncode == 0
    meta = read_meta(out)
    meta["schema_version"] = 99
    (out / "meta.json").write_text(json.dumps(meta))
    p = run_wm(["report", str(out), "--json"])
    assert p.returncode != 0
    assert "99" in p.stderr and "1" in p.stderr


# ---- help and version -------------------------------------------------------------


@pytest.mark.parametrize("args, options", [
    (["--help"], ["run", "report", "sensors", "--version"]),
    (["run", "--help"], ["--output", "--period", "--proc-period", "--mem-period", "--pid",
                         "--sysfs-root", "--procfs-root", "--force-model", "--json", "--quiet"]),
    (["report", "--help"], ["--json", "--top", "--columns"]),
    (["sensors", "--help"], ["--json", "--sysfs-root", "--procfs-root"]),
], ids=["main", "run", "report", "sensors"])
def test_help_exits_0_and_lists_the_options(args, options):
    p = run_wm(args)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: wattmeter")
    for opt in options:
        assert opt in p.stdout, f"{' '.join(args)} does not mention {opt}"


def test_unknown_command_and_option_are_usage_errors(tmp_path):
    p = run_wm(["no-such-subcommand"])
    assert p.returncode == 2 and "no-such-subcommand" in p.stderr
    marker = tmp_path / "ran"
    p = run_wm(["run", "--no-such-option", "--", "touch", str(marker)])
    assert p.returncode in (2, 125)  # usage error (2), or "failed before CMD ran" (125)
    assert "no-such-option" in p.stderr
    assert not marker.exists()
    p = run_wm(["run"])
    assert p.returncode != 0 and "no command" in p.stderr


def test_version_matches_the_python_package():
    p = run_wm(["--version"])
    assert p.returncode == 0
    assert p.stdout.strip() == f"wattmeter {wattmeter.__version__}"


# ---- sensors ----------------------------------------------------------------------


def test_sensors_here_without_powercap_says_absent_with_a_fix_and_modeled(tmp_path):
    root = tmp_path / "sys-empty"
    root.mkdir()
    roots = [["--sysfs-root", str(root)]]
    if not os.path.exists("/sys/class/powercap"):
        roots.append([])  # this machine itself
    for extra in roots:
        p = run_wm(["sensors", *extra])
        assert p.returncode == 0, p.stderr
        assert "rapl-powercap" in p.stdout and "absent" in p.stdout
        assert "modprobe intel_rapl_msr" in p.stdout
        assert "cpu-model" in p.stdout and "modeled" in p.stdout

        j = json.loads(run_wm(["sensors", "--json", *extra]).stdout)
        by = {x["name"]: x for x in j["sensors"]}
        assert by["rapl-powercap"]["state"] == "absent" and by["rapl-powercap"]["fix"]
        assert by["cpu-model"]["state"] == "modeled"
        assert j["zones"] == []


def test_sensors_on_a_fake_tree_lists_every_zone_ok(fake_rapl):
    fake = fake_rapl("intel-2pkg")
    p = run_wm(["sensors", "--sysfs-root", fake.root, "--json"])
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    by = {x["name"]: x for x in j["sensors"]}
    assert by["rapl-powercap"]["state"] == "ok"
    assert by["cpu-model"]["state"] == "unused"
    zones = {z["label"]: z for z in j["zones"]}
    assert set(zones) == {z["label"] for z in fake.zones()}
    assert all(z["state"] == "ok" for z in zones.values())
    counted = {label for label, z in zones.items() if z["counted"]}
    assert counted == {z["label"] for z in fake.zones() if z["device"]}
    assert zones["mmio:package-0"]["counted"] is False
    assert zones["package-0/core"]["counted"] is False
    assert wattmeter.sensors(sysfs_root=fake.root) == j


def forbidden_tree(world_dir) -> FakeRapl:
    fake = FakeRapl(str(world_dir / "sys"), layout="intel-2pkg")
    for p in glob.glob(str(world_dir / "sys/devices/virtual/powercap/**/energy_uj"), recursive=True):
        os.chmod(p, 0o400)  # root-only, as since Linux 5.10
    return fake


def test_sensors_on_a_root_only_tree_says_permission_denied_with_the_udev_fix(world_dir):
    fake = forbidden_tree(world_dir)
    exe = str(world_dir / "wattmeter")
    as_nobody = dict(capture_output=True, text=True, user="nobody", cwd=str(world_dir),
                     stdin=subprocess.DEVNULL, timeout=30)
    p = subprocess.run([exe, "sensors", "--sysfs-root", fake.root], **as_nobody)
    assert p.returncode == 0, p.stderr
    assert "permission denied" in p.stdout
    assert "udev" in p.stdout

    p = subprocess.run([exe, "sensors", "--sysfs-root", fake.root, "--json"], **as_nobody)
    j = json.loads(p.stdout)
    rapl = next(x for x in j["sensors"] if x["name"] == "rapl-powercap")
    assert rapl["state"] == "permission denied"
    assert "udev" in rapl["fix"] and "powercap" in rapl["fix"]
    assert all(z["state"] == "permission denied" for z in j["zones"])

    # As root the same tree is readable.
    j = json.loads(run_wm(["sensors", "--sysfs-root", fake.root, "--json"]).stdout)
    assert next(x for x in j["sensors"] if x["name"] == "rapl-powercap")["state"] == "ok"


def test_run_on_a_root_only_tree_falls_back_to_the_model_and_records_why(world_dir):
    fake = forbidden_tree(world_dir)
    fake.start(interval_s=0.005)
    try:
        out = world_dir / "runs"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        rec = out / "rec"
        p = subprocess.run([str(world_dir / "wattmeter"), "run", "--sysfs-root", fake.root, "-o", str(rec),
                            *FAST, "--", "sleep", "0.5"],
                           capture_output=True, text=True, user="nobody", cwd=str(world_dir),
                           stdin=subprocess.DEVNULL, timeout=30)
    finally:
        fake.stop()
    assert p.returncode == 0, p.stderr
    assert "MODELED" in p.stderr
    meta = read_meta(rec)
    rapl = next(x for x in meta["sensors"] if x["name"] == "rapl-powercap")
    assert rapl["state"] == "permission denied" and "udev" in rapl["fix"]
    assert report_json(rec)["method"]["cpu"] == "modeled"
