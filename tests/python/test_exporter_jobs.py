"""Per-job energy across nodes through Prometheus (issue 18 item 5): the
exporter's --per-cgroup series carry the SLURM job from the cgroup path, so
`sum by (slurm_job)` in Prometheus is a job's energy over all its nodes.

Two "nodes": two exporters on loopback, each in a PID namespace of its own
(`unshare --pid --fork --mount-proc`: each sees only its node's processes),
over the fake RAPL tree. Job 77 has a process on both nodes (cgroups
<test>/slurm/uid_0/job_77/step_0 and step_1), job 88 one on node A. A real
Prometheus scrapes both and evaluates deploy/prometheus/wattmeter.rules.yml.
Truth: each exporter's own per-cgroup counters, read from it directly.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import PY, REPO, WATTMETER, kill_quietly, wait_for
from test_exporter import PROMETHEUS, Prometheus, http_get, parse_series
from test_include import test_cgroup  # noqa: F401  (fixture)

# Keeps half a core busy (started in its cgroup by the node's shell).
BURN = """
import time
while True:
    t = time.monotonic()
    while time.monotonic() - t < 0.05: pass
    time.sleep(0.05)
"""


class Node:
    def __init__(self, fake_root: str, cgroups: List[Path]) -> None:
        # each burner enters its cgroup before its exec: the exporter reads a
        # process's cgroup when it first sees it
        burners = " ".join(f'(echo 0 > {c}/cgroup.procs && exec {PY} -c "$BURN") &' for c in cgroups)
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
             f'{burners} sleep 0.5; exec {WATTMETER} serve --listen 127.0.0.1:0 --per-cgroup --sysfs-root {fake_root} '
             f'--period 0.25'],
            env={**os.environ, "BURN": BURN}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        r, _, _ = select.select([self.proc.stderr], [], [], 20)
        line = self.proc.stderr.readline() if r else ""
        m = re.search(r"serving (\S+)/metrics", line)
        assert m, f"serve did not start: {line!r}"
        self.url = m.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])

    def job_j(self) -> Dict[str, float]:
        """The exporter's own per-job sums (all devices)."""
        _, _, body = http_get(self.url + "/metrics")
        out: Dict[str, float] = {}
        for k, v in parse_series(body.decode()).items():
            m = re.search(r'slurm_job="(\d+)"', k)
            if k.startswith("wattmeter_cgroup_energy_joules_total{") and m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + v
        return out

    def stop(self) -> None:
        kill_quietly(self.proc.pid)
        self.proc.wait()


@pytest.mark.skipif(not PROMETHEUS, reason="prometheus not installed")
def test_two_nodes_one_job_summed_by_prometheus(tmp_path: Path, fake_rapl, test_cgroup: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (PID namespaces, cgroups)")
    fake = fake_rapl("intel-2pkg")
    cg = {}
    for name in ("job_77/step_0", "job_77/step_1", "job_88/step_0"):
        d = test_cgroup / "slurm" / "uid_0" / name
        d.mkdir(parents=True)
        cg[name] = d
    a = Node(fake.root, [cg["job_77/step_0"], cg["job_88/step_0"]])
    b = Node(fake.root, [cg["job_77/step_1"]])
    p = None
    try:
        rules = REPO / "deploy" / "prometheus" / "wattmeter.rules.yml"
        cfg = (f'  - job_name: wm\n    static_configs:\n      - targets: ["127.0.0.1:{a.port}", '
               f'"127.0.0.1:{b.port}"]\n')
        d = tmp_path / "prom"
        d.mkdir()
        # the recording rules as deployed, evaluated every second here
        (d / "rules.yml").write_text(rules.read_text().replace("interval: 15s", "interval: 1s"))
        p = Prometheus(d, cfg)
        # Prometheus.__init__ writes its own config: add rule_files and reload
        text = (d / "prometheus.yml").read_text()
        (d / "prometheus.yml").write_text(text.replace("scrape_configs:", f"rule_files:\n  - {d / 'rules.yml'}\n"
                                                                          "scrape_configs:"))
        p.proc.send_signal(1)  # SIGHUP: reload
        assert wait_for(lambda: p.scalar('count(slurm_job:wattmeter_energy_joules:sum{slurm_job="77"})')
                        is not None, 30.0, 0.5), (p.targets_health(),
                                                    p.scalar('count(wattmeter_cgroup_energy_joules_total{slurm_job="77"})'),
                                                    p.query('count by (__name__) ({__name__=~".+:.+"})'),
                                                    (d / "prometheus.log").read_text()[-1500:])
        time.sleep(3)
        # each exporter's own figures, then the sums Prometheus holds at the
        # same moment (its last scrape of each, <= 1 s old)
        want_a, want_b = a.job_j(), b.job_j()
        assert set(want_a) == {"77", "88"} and set(want_b) == {"77"}
        got77 = p.scalar('sum by (slurm_job) (wattmeter_cgroup_energy_joules_total{slurm_job="77"})')
        got88 = p.scalar('sum(wattmeter_cgroup_energy_joules_total{slurm_job="88"})')
        rule77 = p.scalar('sum(slurm_job:wattmeter_energy_joules:sum{slurm_job="77"})')
        truth77 = want_a["77"] + want_b["77"]
        assert truth77 > 0 and want_b["77"] > 0  # on both nodes
        # counters grow ~ a few J/s: a scrape's lag of <= 1.25 s
        assert got77 == pytest.approx(truth77, rel=0.15)
        assert got88 == pytest.approx(want_a["88"], rel=0.15)
        assert rule77 == pytest.approx(truth77, rel=0.25)
        # the job spans two instances
        assert p.scalar('count(count by (instance) (wattmeter_cgroup_energy_joules_total{slurm_job="77"}))') == 2
    finally:
        if p:
            p.stop()
        a.stop()
        b.stop()
