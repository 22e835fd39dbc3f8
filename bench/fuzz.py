#!/usr/bin/env python3
"""Fuzzing throughput: every libFuzzer harness of fuzz/ run for a while, from
a clean build folder (so this also proves that fuzz/run.sh builds from a
clean clone), and the rate of each written to bench/results/.

    python3 bench/fuzz.py [--seconds 60] [--before REF] [--targets T...]

Needs clang (libFuzzer). Builds into build-fuzz-bench/ (removed first).
--before REF (default c118a74, the last commit whose fuzz_recording went
through files) also builds that commit's fuzz_recording from `git archive`
and runs it the same time on the same seeds, for the before/after figure;
skipped when the commit is not in the clone.

Nothing here asserts a rate: the machine is usually shared, and the figures
say the load they ran under. Each harness runs once (a single libFuzzer
process): execs/s is libFuzzer's own average_exec_per_sec over the run.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

REPO = benchlib.REPO
TARGETS = ["fuzz_pid_stat", "fuzz_proc_files", "fuzz_recording", "fuzz_report_html", "fuzz_cuda_visible",
           "fuzz_cgroup", "fuzz_web_config"]
WHAT = {
    "fuzz_pid_stat": "/proc/<pid>/stat parser",
    "fuzz_proc_files": "/proc stat, smaps_rollup, meminfo, cmdline, cpuinfo parsers",
    "fuzz_recording": "recording reader (meta.json + samples.jsonl, in memory), summary JSON/text, columns, details, windows",
    "fuzz_report_html": "HTML report, carbon, comparison renderers over the reader",
    "fuzz_cuda_visible": "CUDA_VISIBLE_DEVICES parser",
    "fuzz_cgroup": "/proc/<pid>/cgroup parser",
    "fuzz_web_config": "exporter web config (YAML subset), HTTP header parsers",
}


def stats_of(log: str) -> Dict[str, Optional[float]]:
    out: Dict[str, Optional[float]] = {}
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return out
    for key in ("average_exec_per_sec", "number_of_executed_units", "new_units_added", "peak_rss_mb"):
        m = re.findall(r"^stat::%s:\s*(\d+)" % key, text, re.M)
        out[key] = float(m[-1]) if m else None
    return out


def run_before(ref: str, seconds: int, workdir: str) -> Optional[Dict[str, object]]:
    """The fuzz_recording of commit ref (through files), same seconds, same seeds."""
    if subprocess.run(["git", "-C", REPO, "cat-file", "-e", ref + "^{commit}"],
                      capture_output=True).returncode != 0:
        return None
    src = os.path.join(workdir, "before-src")
    os.makedirs(src)
    arch = subprocess.run(["git", "-C", REPO, "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=arch, check=True)
    inc = os.path.join(workdir, "before-include")
    os.makedirs(inc)
    with open(os.path.join(REPO, "VERSION")) as f, open(os.path.join(inc, "wattmeter_version.h"), "w") as h:
        h.write('#define WM_VERSION "%s"\n' % f.read().strip())
    core = [os.path.join(dp, n) for dp, _, fs in os.walk(os.path.join(src, "src")) for n in fs
            if n.endswith(".c") and "/src/cli" not in dp]
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "jansson", "libmicrohttpd", "zlib"],
                        capture_output=True, text=True, check=True).stdout.split()
    exe = os.path.join(workdir, "fuzz_recording_before")
    subprocess.run(["clang", "-g", "-O1", "-std=c11", "-D_GNU_SOURCE", "-fsanitize=fuzzer,address,undefined",
                    "-I" + os.path.join(src, "include"), "-I" + os.path.join(src, "src"), "-I" + inc, "-o", exe,
                    os.path.join(src, "fuzz", "fuzz_recording.c")] + core + pc + ["-lcrypt", "-lm", "-ldl",
                                                                                   "-lpthread"], check=True)
    new = os.path.join(workdir, "before-corpus")
    os.makedirs(new)
    log = os.path.join(workdir, "before.log")
    with open(log, "w") as lf:
        subprocess.run([exe, "-max_total_time=%d" % seconds, "-timeout=10", "-rss_limit_mb=2048",
                        "-print_final_stats=1", "-artifact_prefix=" + workdir + "/", new,
                        os.path.join(src, "fuzz", "corpus", "fuzz_recording")],
                       stdout=lf, stderr=subprocess.STDOUT, cwd=workdir)
    return {"ref": ref, **stats_of(log)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="per harness (default 60)")
    ap.add_argument("--before", default="c118a74", help="commit whose file-based fuzz_recording to compare")
    ap.add_argument("--no-before", action="store_true")
    ap.add_argument("--targets", nargs="+", default=TARGETS, choices=TARGETS, help="default: all")
    a = ap.parse_args()
    if not shutil.which("clang"):
        print("bench/fuzz.py: clang not found (libFuzzer comes with it): apt-get install clang", file=sys.stderr)
        return 2
    m = benchlib.machine()
    out = os.path.join(REPO, "build-fuzz-bench")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, FUZZ_OUT=out)
    p = subprocess.run(["sh", os.path.join(REPO, "fuzz", "run.sh"), str(a.seconds)] + a.targets, env=env,
                       capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    rows: List[Dict[str, object]] = []
    for t in a.targets:
        st = stats_of(os.path.join(out, t, "log.txt"))
        verdict = re.search(r"^== %s: (clean|FAILED.*|BUILD FAILED)" % t, p.stdout, re.M)
        rows.append({"target": t, "what": WHAT[t], "result": verdict.group(1) if verdict else "not run", **st})
    before = None
    if not a.no_before:
        with tempfile.TemporaryDirectory() as wd:
            try:
                before = run_before(a.before, a.seconds, wd)
            except (subprocess.CalledProcessError, OSError) as e:
                before = {"ref": a.before, "error": str(e)}

    def n(v: Optional[float]) -> str:
        return "-" if v is None else "{:,.0f}".format(v)

    md = (f"# Fuzzing throughput — {benchlib.stamp()}\n\n{benchlib.machine_md(m)}"
          f"- `python3 bench/fuzz.py --seconds {a.seconds}`: each harness of `fuzz/` built by `fuzz/run.sh` from a "
          f"clean folder (clang, -fsanitize=fuzzer,address,undefined,float-cast-overflow) and run "
          f"{a.seconds} s in one process on its committed seeds; execs/s is libFuzzer's average over the run\n\n"
          "| harness | what it parses | result | execs/s | inputs run | new inputs | peak RSS (MB) |\n"
          "|---|---|---|---|---|---|---|\n")
    for r in rows:
        md += (f"| `{r['target']}` | {r['what']} | {r['result']} | {n(r.get('average_exec_per_sec'))} | "
               f"{n(r.get('number_of_executed_units'))} | {n(r.get('new_units_added'))} | "
               f"{n(r.get('peak_rss_mb'))} |\n")
    if before and "error" not in before:
        md += (f"\nBefore (`{before['ref']}`, `fuzz_recording` writing each input to a scratch folder and "
               f"reading it back, all renderers in one harness): {n(before.get('average_exec_per_sec'))} execs/s "
               f"over the same {a.seconds} s on the same machine.\n")
    elif before:
        md += f"\nBefore (`{before['ref']}`): could not be built or run: {before['error']}\n"
    data = {"machine": m, "seconds": a.seconds, "harnesses": rows, "before": before}
    part = "" if a.targets == TARGETS else "-" + "-".join(t.replace("fuzz_", "") for t in a.targets)
    base = os.path.join(benchlib.RESULTS, f"fuzz-{benchlib.stamp()}-{m['host']}{part}")
    benchlib.write_results(base, md, data)
    print(md)
    print("written:", base + ".md", file=sys.stderr)
    return 0 if all(r["result"] == "clean" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
