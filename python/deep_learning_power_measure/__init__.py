"""AIPowerMeter's documented API (``deep_learning_power_measure``) over wattmeter.

Scripts written for AIPowerMeter (GreenAI-Uppa/AIPowerMeter) run unchanged::

    from deep_learning_power_measure.power_measure import experiment, parsers
    driver = parsers.JsonParser("output_folder")
    exp = experiment.Experiment(driver)
    p, q = exp.measure_yourself(period=2)
    ...                                   # the code to measure
    q.put(experiment.STOP_MESSAGE)
    p.join()

    exp_result = experiment.ExpResults(parsers.JsonParser("output_folder"))
    exp_result.print()

Recording is done by wattmeter's native core (hardware counters, exact
totals); ``JsonParser`` reads wattmeter recordings and AIPowerMeter's own
``power_metrics.json`` files alike. Where AIPowerMeter's arithmetic is wrong
this package does the right thing; every difference is listed in
docs/aipowermeter.md.
"""

from __future__ import annotations  # noqa: E402

import os as _os
import sys
import warnings as _warnings
from typing import List, Optional

__all__ = ["main", "check_installation"]

_DIST_NAMES = {"deep-learning-power-measure", "deep_learning_power_measure"}


def _meta(dist: object, key: str) -> str:
    try:
        v = dist.metadata[key]  # type: ignore[attr-defined]
    except (KeyError, AttributeError):
        return ""
    return str(v) if v else ""


def check_installation() -> Optional[str]:
    """None, or what is wrong when AIPowerMeter's own distribution
    (``deep_learning_power_measure``, from its ``pip install .``) is installed
    beside wattmeter's drop-in: in the same folder the two packages overwrite
    each other's files, and ``pip uninstall deep_learning_power_measure``
    would delete wattmeter's; elsewhere on sys.path one hides the other."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover  (Python < 3.8)
        return None
    here = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
    for dist in metadata.distributions():
        name = _meta(dist, "Name").strip().lower().replace("_", "-")
        if name.replace("-", "_") not in {n.replace("-", "_") for n in _DIST_NAMES}:
            continue
        loc = _os.path.abspath(str(dist.locate_file("")))
        ver = _meta(dist, "Version") or "?"
        fix = ("To use wattmeter's drop-in: `pip uninstall deep_learning_power_measure` (AIPowerMeter), then "
               "reinstall wattmeter (`pip install --force-reinstall .` in wattmeter's source tree), since "
               "that uninstall also deletes the files the two share. To keep AIPowerMeter, install it or "
               "wattmeter in a virtual environment of its own (python3 -m venv).")
        if loc == here:
            return (f"AIPowerMeter (deep_learning_power_measure {ver}) is installed in {here}, the folder of "
                    "wattmeter's drop-in of the same name: their files overwrite each other there. " + fix)
        return (f"AIPowerMeter (deep_learning_power_measure {ver}) is also installed, in {loc}: it and "
                f"wattmeter's drop-in ({here}) have the same name and one hides the other. " + fix)
    return None


if not _os.environ.get("WATTMETER_NO_AIPM_CHECK"):
    try:
        _problem = check_installation()
    except Exception:  # never let a check of the environment break an import
        _problem = None
    if _problem:
        _warnings.warn(_problem, RuntimeWarning, stacklevel=2)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m deep_learning_power_measure --cmd "python train.py"
    --output_folder DIR``: records a command as AIPowerMeter's entry point
    does, then prints the summary. The command is split with shlex and run
    without a shell (no pipes or redirections: wrap them in a script, or use
    ``wattmeter run``). Returns the command's exit status."""
    import argparse
    import shlex
    import subprocess
    from deep_learning_power_measure.power_measure import experiment, parsers

    ap = argparse.ArgumentParser(prog="python -m deep_learning_power_measure")
    ap.add_argument("--cmd", required=True, help="the command to measure (split with shlex, run without a shell)")
    ap.add_argument("--cont", type=lambda s: s.lower() in ("1", "true", "yes"), default=False,
                    help="True: add a recording segment to the folder instead of replacing its recordings")
    ap.add_argument("--output_folder", default="power_measure", help="where the recordings go")
    ap.add_argument("--period", type=float, default=0.1, help="sampling interval in seconds")
    ap.add_argument("--measurement_period", type=float, default=2, help="accepted for compatibility")
    ap.add_argument("--sysfs_root", default=None, help="read powercap below this root (wattmeter's; containers, tests)")
    args = ap.parse_args(argv)
    cmd = shlex.split(args.cmd)
    if not cmd:
        ap.error("--cmd is empty: give the command to measure")
    driver = parsers.JsonParser(args.output_folder)
    exp = experiment.Experiment(driver, cont=args.cont, sysfs_root=args.sysfs_root)
    p, q = exp.measure_yourself(period=args.period, measurement_period=args.measurement_period)
    try:
        rc = subprocess.run(cmd).returncode
    except OSError as e:
        print(f"ERROR: cannot run {cmd[0]!r}: {e}", file=sys.stderr)
        rc = 127
    finally:
        q.put(experiment.STOP_MESSAGE)
        p.join()
    if rc:
        print("ERROR : in the measured program, see log before this message", file=sys.stderr)
    experiment.ExpResults(parsers.JsonParser(args.output_folder)).print()
    return rc
