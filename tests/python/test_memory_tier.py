"""The memory tier (PSS/USS from smaps_rollup) re-reads a measured set only
when the stat the process tier reads anyway shows something that can move
PSS (rss, page faults, a process joining or leaving), and otherwise keeps the
last figures for at most 5 rounds in a row (proctree.h). An idle set costs
no page-table walks; a process that allocates is seen at the next round."""

from __future__ import annotations

import json
import textwrap

from conftest import PY, read_meta, read_sample_lines, run_wm

ALLOC_MB = 200

# Idle for 1.8 s, then 200 MB written (resident: every page touched), then
# idle for 1 s more. The time of the allocation's end on stdout.
WORKLOAD = textwrap.dedent(f"""
    import time
    time.sleep(1.8)
    b = b"\\x01" * ({ALLOC_MB} << 20)
    print(time.time(), flush=True)
    time.sleep(1.0)
""")


def child_pss(out, pid: int) -> list:
    """(t_s, pss_bytes) of pid, per sample line that has it."""
    rows = []
    for line in read_sample_lines(out):
        s = json.loads(line)
        for p in s.get("procs", []):
            if p.get("pid") == pid and "pss_bytes" in p:
                rows.append((s["t_s"], p["pss_bytes"]))
    return rows


def test_idle_rounds_reuse_and_an_allocation_is_read_at_the_next_round(tmp_path):
    out = tmp_path / "rec"
    # memory every 0.5 s: the idle rounds at about 1.0 and 1.5 s see nothing
    # move; the cap (5 reused rounds) would force the next read at about 3.5
    # s, after the child has exited at 2.8 s: a rise seen before then is the
    # change rule's.
    p = run_wm(["run", "-q", "-o", str(out), "--period", "0.1", "--proc-period", "0.1", "--mem-period", "0.5",
                "--", PY, "-c", WORKLOAD])
    assert p.returncode == 0, p.stderr
    meta = read_meta(out)
    rounds_read = meta["self"]["memory_rounds_read"]
    rounds_reused = meta["self"]["memory_rounds_reused"]
    assert rounds_reused >= 1, meta["self"]
    assert rounds_read >= 2, meta["self"]   # the first, and the one after the allocation

    pids = set()
    for line in read_sample_lines(out):
        pids.update(q["pid"] for q in json.loads(line).get("procs", []) if "pss_bytes" in q)
    assert len(pids) == 1, pids
    rows = child_pss(out, pids.pop())
    first_pss = rows[0][1]
    last_pss = max(v for _, v in rows)
    # The independent truth: the child wrote ALLOC_MB MiB, every page of it.
    assert last_pss - first_pss >= 0.95 * (ALLOC_MB << 20), (first_pss, last_pss)

    # Seen within two memory rounds of the allocation's end (the stat shows
    # the new rss at the next process sample, the read follows at the next
    # memory round), long before the cap's forced read.
    t_alloc = float(p.stdout.strip().splitlines()[-1]) - meta["start_unix_s"]
    t_seen = next(t for t, v in rows if v - first_pss >= 0.95 * (ALLOC_MB << 20))
    assert t_seen - t_alloc <= 1.0, (t_alloc, t_seen, rows)
