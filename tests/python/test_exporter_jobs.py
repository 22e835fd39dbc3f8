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

import json
import os
import re
import secrets
import select
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

from conftest import PY, REPO, WATTMETER, kill_quietly, wait_for
from test_exporter import MOCK_NVML, PROMETHEUS, PROMTOOL, Prometheus, http_get, parse_series
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
    def __init__(self, fake_root: str, cgroups: List[Path], extra: str = "", env: Optional[Dict[str, str]] = None) -> None:
        # each burner enters its cgroup before its exec: the exporter reads a
        # process's cgroup when it first sees it
        burners = " ".join(f'(echo 0 > {c}/cgroup.procs && exec {PY} -c "$BURN") &' for c in cgroups)
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
             f'{burners} sleep 0.5; exec {WATTMETER} serve --listen 127.0.0.1:0 --per-cgroup --sysfs-root {fake_root} '
             f'--period 0.25 {extra}'],
            env={**os.environ, "BURN": BURN, **(env or {})}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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
    # and a Kubernetes pod's container on node B (cgroupfs driver's shape):
    # the pod and container rules and labels have series too
    pod_uid, ctr_id = str(uuid.uuid4()), secrets.token_hex(32)
    cg["pod"] = test_cgroup / "kubepods" / "burstable" / f"pod{pod_uid}" / ctr_id
    cg["pod"].mkdir(parents=True)
    gpu: Dict[str, str] = {}
    extra = ""
    if MOCK_NVML:  # node A has a GPU: the dashboard's GPU panels then have series too
        (tmp_path / "scenario").write_text("gpu0.watts=120\ngpu0.util=40\n")
        gpu = {"WM_MOCK_NVML_SCENARIO": str(tmp_path / "scenario")}
        extra = f"--nvml-lib {MOCK_NVML}"
    a = Node(fake.root, [cg["job_77/step_0"], cg["job_88/step_0"]], extra, gpu)
    b = Node(fake.root, [cg["job_77/step_1"], cg["pod"]])
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
        # Counters only grow, so what Prometheus holds (each exporter's value
        # at its last scrape) is bracketed by the exporters' own figures read
        # before and after it took that scrape: the check is exact whatever
        # the scrape lag (a rel=0.15 match failed on a loaded machine).
        before_a, before_b = a.job_j(), b.job_j()
        assert set(before_a) == {"77", "88"} and set(before_b) == {"77"}
        # node B's pod series may reach Prometheus a scrape after job 77's
        # first series (from either node): wait for it rather than race it
        pods: Dict[str, Optional[str]] = {}

        def pod_seen() -> bool:
            pods.clear()
            pods.update({r["metric"]["pod"]: r["metric"].get("container") for r in
                         p.query('sum by (pod, container) (wattmeter_cgroup_energy_joules_total{pod!=""})')})
            return bool(pods)

        wait_for(pod_seen, 30.0, 0.25)
        assert pods == {pod_uid: f"kubepods:{ctr_id[:12]}"}, pods
        lo77, lo88 = before_a["77"] + before_b["77"], before_a["88"]
        q77 = 'sum(wattmeter_cgroup_energy_joules_total{slurm_job="77"})'
        q88 = 'sum(wattmeter_cgroup_energy_joules_total{slurm_job="88"})'
        r77 = 'sum(slurm_job:wattmeter_energy_joules:sum{slurm_job="77"})'
        held: Dict[str, float] = {}

        def scraped_since() -> bool:
            for k, q in (("77", q77), ("88", q88), ("rule77", r77)):
                held[k] = p.scalar(q) or 0.0
            return held["77"] >= lo77 and held["88"] >= lo88 and held["rule77"] >= lo77

        assert wait_for(scraped_since, 30.0, 0.25), (held, lo77, lo88)
        after_a, after_b = a.job_j(), b.job_j()
        hi77, hi88 = after_a["77"] + after_b["77"], after_a["88"]
        assert before_b["77"] > 0 and lo77 > 0  # on both nodes
        assert lo77 <= held["77"] <= hi77 + 1e-6, (lo77, held, hi77)
        assert lo88 <= held["88"] <= hi88 + 1e-6, (lo88, held, hi88)
        # the recording rule (evaluated every second) sums the same series
        assert lo77 <= held["rule77"] <= hi77 + 1e-6, (lo77, held, hi77)
        # the job spans two instances
        assert p.scalar('count(count by (instance) (wattmeter_cgroup_energy_joules_total{slurm_job="77"}))') == 2
        # the Grafana panel "Power per SLURM job" as deployed: both jobs, watts > 0
        panel = {r["metric"]["slurm_job"]: float(r["value"][1])
                 for r in p.query(grafana_expr(dashboard_expr("Power per SLURM job")))}
        assert set(panel) == {"77", "88"} and all(w > 0 for w in panel.values()), panel
        # every query the deploy files hold runs here and names series the
        # exporters emit, with the labels it selects and groups by
        for where, expr in deploy_exprs():
            if "gpu" in expr and not MOCK_NVML:
                continue
            p.query(grafana_expr(expr))  # parses and evaluates (asserts success)
            for name, labels in series_used(expr):
                if name.endswith(":rate1m") or name.endswith(":sum") or ":" in name:
                    continue  # a recording rule's output, checked as its own expr
                assert p.scalar(f"count({name})"), f"{where}: {name} is not emitted"
                for lab in labels - {"instance", "job"}:
                    assert p.scalar(f'count({name}{{{lab}!=""}})'), f"{where}: {name} has no label {lab}"
    finally:
        if p:
            p.stop()
        a.stop()
        b.stop()


# ---- deploy/: the dashboard's and the rules' queries -------------------------------------

DEPLOY = REPO / "deploy"


def dashboard_exprs() -> List[Tuple[str, str]]:
    dash = json.loads((DEPLOY / "grafana" / "wattmeter-dashboard.json").read_text())
    out = []

    def walk(panels: list) -> None:
        for pn in panels:
            out.extend((f"panel {pn.get('title')!r}", t["expr"]) for t in pn.get("targets", []) if t.get("expr"))
            walk(pn.get("panels", []))
    walk(dash["panels"])
    return out


def dashboard_expr(title: str) -> str:
    [e] = [e for w, e in dashboard_exprs() if w.startswith(f"panel {title!r}"[:-1])]
    return e


def deploy_exprs() -> List[Tuple[str, str]]:
    """Every PromQL expression deploy/ holds: the Grafana panels' and the
    recording rules' (the rules file read as YAML by a minimal reader of its
    `record:` / `expr:` lines, block scalars included)."""
    out = dashboard_exprs()
    lines = (DEPLOY / "prometheus" / "wattmeter.rules.yml").read_text().splitlines()
    record = ""
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if ln.startswith("- record:"):
            record = ln.split(":", 1)[1].strip()
        elif ln.startswith("expr:"):
            v = ln.split(":", 1)[1].strip()
            if v in ("|", ">"):
                ind = len(lines[i + 1]) - len(lines[i + 1].lstrip())
                body = []
                while i + 1 < len(lines) and (not lines[i + 1].strip() or
                                              len(lines[i + 1]) - len(lines[i + 1].lstrip()) >= ind):
                    i += 1
                    body.append(lines[i].strip())
                v = " ".join(body)
            out.append((f"rule {record}", v))
        i += 1
    assert len(out) > len(dashboard_exprs())
    return out


def grafana_expr(expr: str) -> str:
    """Grafana's variables as it would fill them in."""
    return (expr.replace("$__rate_interval", "5s").replace("$__range", "1m").replace("$instance", ".*")
            .replace("${instance}", ".*"))


def series_used(expr: str) -> List[Tuple[str, Set[str]]]:
    """(metric, labels it selects on or groups by) for every metric an
    expression names."""
    groups = set(l.strip() for g in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr) for l in g.split(",")
                 if l.strip())
    out = []
    for m in re.finditer(r"\b([a-z_]+(?::[a-z_0-9]+)*)\s*(\{[^}]*\})?", expr):
        name, sel = m.group(1), m.group(2) or ""
        if not (name.startswith("wattmeter_") or ":" in name):
            continue
        labels = set(re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", sel))
        out.append((name, labels | groups))
    return out


@pytest.mark.skipif(not PROMTOOL, reason="promtool not installed")
def test_every_dashboard_query_parses_with_promtool(tmp_path: Path) -> None:
    """The Grafana panels' queries, Grafana's variables filled in, checked by
    promtool as recording rules (promtool parses every expr)."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    body = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:q{i}\n        expr: {json.dumps(grafana_expr(e))}\n" for i, (_, e) in enumerate(exprs))
    f = tmp_path / "dash.rules.yml"
    f.write_text(body)
    p = subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in p.stdout
    # and a broken one is caught: the check can fail
    f.write_text(body + "      - record: dashboard:bad\n        expr: 'sum by (slurm_job (x)'\n")
    assert subprocess.run([PROMTOOL, "check", "rules", str(f)], capture_output=True).returncode != 0


def test_the_deploy_files_hold_the_per_job_rules_and_panel() -> None:
    rules = dict((w, e) for w, e in deploy_exprs() if w.startswith("rule "))
    assert "sum by (slurm_job" in rules["rule slurm_job:wattmeter_energy_joules:sum"]
    assert "sum by (slurm_job)" in rules["rule slurm_job:wattmeter_power_watts:rate1m"]
    assert "sum by (slurm_job)" in dashboard_expr("Power per SLURM job")
