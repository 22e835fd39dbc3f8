#!/usr/bin/env python3
"""sampleprof — where a counter-tier sample's cost goes (toward the floor).

Instruction counts are repeatable on a noisy shared machine where times are
not, so this runs the wattmeter CLI under `valgrind --tool=callgrind
--toggle-collect=sample` (only the sampler's sample() and what it calls are
counted) at --period 0.01 with the process tier off (--proc-period 1000,
--no-memory) over the 9-zone fake RAPL tree, and divides each function's
own (exclusive) instruction count by the number of samples. A second run
under `strace -f -c` counts the system calls per sample (the kernel side,
which callgrind does not see).

Needs a build with symbols: build-cg/ (meson -Dbuildtype=debugoptimized),
made here if absent. Standard library only; valgrind and strace must be on
PATH (else the section says so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

CG_BUILD = os.path.join(bl.REPO, "build-cg")

# function (exclusive cost) -> what it is part of
GROUPS = [
    ("parse counter text", re.compile(r"wm_parse_u64|strtoull|__strtoul")),
    ("read syscalls' user side (pread wrappers, cancellation points)",
     re.compile(r"wm_pread_all|wm_rapl_read_uj|^pread|asynccancel|__libc_pread")),
    ("format the JSON line (numbers, keys, buffer growth)",
     re.compile(r"wm_buf_|put_num|put_key|snprintf|vfprintf|printf|_IO_|strlen|strchrnul|memcpy|memmove|llround|"
                r"lround|__printf_fp|hack_digit|__mpn_|round_and_return")),
    ("append the line (recorder)", re.compile(r"wm_recorder_append|^write|__libc_write")),
    ("counter arithmetic (wraps, totals)", re.compile(r"wm_counter_update|read_counters")),
    ("clocks and locks", re.compile(r"clock_gettime|thread_cpu_s|wm_now_mono_ns|pthread_mutex|__vdso")),
]


def ensure_build() -> str:
    exe = os.path.join(CG_BUILD, "wattmeter")
    if not os.path.exists(os.path.join(CG_BUILD, "build.ninja")):
        subprocess.run(["meson", "setup", CG_BUILD, "-Dbuildtype=debugoptimized"], cwd=bl.REPO, check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", CG_BUILD, "wattmeter"], check=True, stdout=subprocess.DEVNULL)
    return exe


def annotate(out: str) -> dict:
    """Exclusive instruction count per function of one callgrind output."""
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", out],
                         capture_output=True, text=True, check=True).stdout
    funcs: dict = {}
    for line in ann.splitlines():
        if line.startswith("-- Auto-annotated"):
            break
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        name = m.group(2)
        fn = name.split(":", 1)[1] if ":" in name else name
        fn = fn.split(" [")[0].strip()
        funcs[fn] = funcs.get(fn, 0) + int(m.group(1).replace(",", ""))
    return funcs


def run(seconds: float = 3.0, wm_bin: str | None = None, label: str = "") -> dict:
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        return {"error": "valgrind/callgrind_annotate not on PATH"}
    exe = wm_bin or ensure_build()
    tmp = tempfile.mkdtemp(prefix="wm-prof-")
    try:
        with bl.FakeRaplProc(os.path.join(tmp, "sys"), max_range_uj=262143328850) as fake:
            args = ["run", "-q", "--period", "0.01", "--proc-period", "1000", "--no-memory",
                    "--sysfs-root", fake.root, "--", "sleep", str(seconds)]
            # two runs, a short and a long one: the difference in each
            # function's count over the difference in samples is its cost per
            # steady sample (the baseline and stop samples, which scan the
            # processes, cancel out)
            cg = []
            for k, secs in enumerate((0.5, 0.5 + seconds)):
                out = os.path.join(tmp, f"cg-{k}.out")
                rec = os.path.join(tmp, f"rec-{k}")
                a2 = [*args[:-1], str(secs)]
                subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=sample",
                                f"--callgrind-out-file={out}", exe, a2[0], "-o", rec, *a2[1:]],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with open(os.path.join(rec, "meta.json")) as f:
                    n_s = json.load(f)["self"]["samples"]
                cg.append((n_s, annotate(out)))
            samples = cg[1][0] - cg[0][0]
            names = set(cg[0][1]) | set(cg[1][1])
            funcs = [(fn, cg[1][1].get(fn, 0) - cg[0][1].get(fn, 0)) for fn in names]
            funcs = [(fn, n) for fn, n in funcs if n > 0]
            total = sum(n for _, n in funcs)
            # system calls per steady sample: the difference between a short
            # and a long run (start-up and exit cancel out)
            sys_counts = {}
            if shutil.which("strace"):
                got = []
                for k, secs in enumerate((1.0, 1.0 + seconds)):
                    rec2 = os.path.join(tmp, f"rec-st-{k}")
                    txt = os.path.join(tmp, f"strace-{k}.txt")
                    a2 = [*args[:-1], str(secs)]
                    st = subprocess.run(["strace", "-f", "-c", "-o", txt, exe, a2[0], "-o", rec2, *a2[1:]],
                                        capture_output=True, text=True)
                    if st.returncode != 0:
                        break
                    with open(os.path.join(rec2, "meta.json")) as f:
                        n_s = json.load(f)["self"]["samples"]
                    c = {}
                    with open(txt) as f:
                        for line in f:
                            parts = line.split()
                            if (len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit()
                                    and parts[-1] != "total"):
                                c[parts[-1]] = int(parts[3])
                    got.append((n_s, c))
                if len(got) == 2 and got[1][0] > got[0][0]:
                    dn = got[1][0] - got[0][0]
                    for name in set(got[0][1]) | set(got[1][1]):
                        sys_counts[name] = (got[1][1].get(name, 0) - got[0][1].get(name, 0)) / dn
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    groups = {g: 0 for g, _ in GROUPS}
    groups["the rest of sample() and other"] = 0
    for fn, n in funcs:
        for g, rx in GROUPS:
            if rx.search(fn):
                groups[g] += n
                break
        else:
            groups["the rest of sample() and other"] += n
    return {"label": label, "binary": exe, "samples": samples, "ir_total": total,
            "ir_per_sample": total / samples if samples else float("nan"),
            "top": [(fn, n / samples) for fn, n in sorted(funcs, key=lambda x: -x[1])[:15]],
            "groups": {g: n / samples for g, n in groups.items()},
            "syscalls_per_sample": sys_counts}


def table(res: dict) -> str:
    if "error" in res:
        return f"Not measured: {res['error']}.\n"
    t = (f"Callgrind, `wattmeter run --period 0.01 --proc-period 1000 --no-memory` over the fake tree, a 0.5 s "
         f"run subtracted from a longer one ({res['samples']} samples apart): **{res['ir_per_sample']:.0f} "
         "instructions per steady sample** in sample() and below (user space only).\n\n| part | instructions per sample | share |\n|---|---|---|\n")
    tot = res["ir_per_sample"] or 1
    for g, n in sorted(res["groups"].items(), key=lambda x: -x[1]):
        t += f"| {g} | {n:.0f} | {100 * n / tot:.0f}% |\n"
    t += "\n| function (exclusive) | instructions per sample |\n|---|---|\n"
    for fn, n in res["top"]:
        t += f"| `{fn}` | {n:.0f} |\n"
    if res["syscalls_per_sample"]:
        t += ("\nSystem calls per steady sample (`strace -f -c` of a 1 s and a longer run; the difference "
              "over the difference in samples): " +
              ", ".join(f"{k} {v:.2f}" for k, v in sorted(res["syscalls_per_sample"].items(), key=lambda x: -x[1])
                        if v >= 0.05) + ".\n")
    return t


if __name__ == "__main__":
    r = run(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
    print(table(r))
