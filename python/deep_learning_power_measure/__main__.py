"""``python -m deep_learning_power_measure --cmd "python train.py" --output_folder DIR``:
records a command as AIPowerMeter's module entry point does, then prints the
summary. The command is split with shlex and run without a shell (no pipes or
redirections: wrap them in a script, or use ``wattmeter run``)."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
