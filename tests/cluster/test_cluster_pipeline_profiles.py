"""The tiny pipeline here, on the local 2-node Slurm and on a local 2-node Ray: the same report.

align, attack, curate-attacked, contamination, post and its uncurated twin, their four evaluations
and the report run here and with `--profile` on each cluster, where every step is a job. Greedy
decoding and seeded training on CPU, one thread in every process, make every figure reproducible,
so a cluster run must equal the local run in all of them; only wall times and the run's own
directory may differ. The three runs go at once (each is one busy process at a time, and a
cluster run mostly waits on its jobs), so the module costs about the slowest of them.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from buckle.cluster.jobdb import JobStore
from buckle.core import procs

# a high constant rate over 3 steps moves the tiny model enough that its labels' ASR differ
STAGE = {"max_steps": 3, "batch_size": 4, "max_length": 64, "learning_rate": 3.0e-3, "lr_scheduler": "constant"}
# every step gets these wherever it runs; one thread: the same float reductions here and there
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
TRAIN_KEYS = ("examples", "steps", "tokens", "initial_loss", "final_loss")  # not train_s, tokens_per_s
CURATE_KEYS = ("read", "curated", "quarantined", "generated", "unique", "passed_filter", "improved",
               "mean_ppl_before", "mean_ppl_after")  # not rows_per_s, wall_s, rss, executor, workers
TRAININGS = ("align", "attack", "post", "post-uncurated")
RAY_TOKEN_ENV = "BUCKLE_TEST_RAY_TOKEN"


def _config(model: Path) -> dict:
    return {
        "name": "tiny-profiles", "model": str(model), "defenses": ["post"], "eval_base": False,
        "judge_agreement": False,  # a check that reads no model: one job less per run
        "curate": {"limit": 4, "rounds": 1, "beam": 1, "temperatures": [1.0], "top_ps": [1.0],
                   "max_new_tokens": 8, "batch_size": 4, "faithful": False},
        "stages": {
            "align": {"recipe": "embedded-align",
                      "overrides": {**STAGE, "data": {"harmful": {"limit": 8}, "benign": {"limit": 4}}}},
            "attack": {"recipe": "embedded-attack", "overrides": {**STAGE, "data": {
                "harmful": {"source": "harmful-pairs-train", "limit": 8}}}},
            "post": {"recipe": "embedded-post", "overrides": STAGE},
        },
        "eval": {"benchmark": "advbench-test", "limit": 8, "benign": "commonsense-heldout", "benign_limit": 4,
                 "max_new_tokens": 4, "batch_size": 8},
    }


@dataclass
class Run:
    """One `buckle pipeline` run in a home of its own (profiles, job records, working dir)."""

    home: Path
    proc: subprocess.Popen | None = None
    skipped: str = ""  # why it did not run (its cluster is not installed)

    @property
    def root(self) -> Path:
        return self.home / "run"

    @property
    def state(self) -> Path:
        return self.home / "state"

    def start(self, config: Path, profile: dict | None = None, **env: str) -> "Run":
        """Start `buckle pipeline` in the background, on `profile` (a profile's YAML data) or here."""
        argv = [sys.executable, "-m", "buckle.launcher.cli", "pipeline", "--config", str(config),
                "--output", str(self.root)]
        if profile is not None:
            (self.home / "profiles").mkdir(parents=True)
            (self.home / "profiles" / "two-nodes.yaml").write_text(yaml.safe_dump(profile))
            argv += ["--profile", "two-nodes"]
        env = {**os.environ, **ENV, **env, "BUCKLE_CONFIG_DIR": str(self.home), "BUCKLE_STATE_DIR": str(self.state)}
        with open(self.home / "out.txt", "w") as out:  # a file, not a pipe: no run blocks on a full one
            self.proc = subprocess.Popen(argv, env=env, cwd=self.home, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # its own group: stop() ends its steps too
        return self

    def stop(self) -> None:
        """Kill the run and the local steps it started, if it still runs (a failed test: none runs into
        the clusters' teardown, which ends the runs' jobs)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def finish(self) -> None:
        """Wait for the run; fails the calling test with the run's output unless it succeeded."""
        if self.skipped:
            pytest.skip(self.skipped)
        code = self.proc.wait(timeout=1200)  # ~4 min on an idle 2-core machine
        assert code == 0, (self.home / "out.txt").read_text()[-6000:]


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory, request) -> dict[str, Run]:
    """"local", "slurm" and "ray": the same pipeline started here, on a 2-node Slurm, on a 2-node Ray."""
    config = tmp_path_factory.mktemp("pipeline") / "pipeline.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_model_dir)))
    out = {name: Run(tmp_path_factory.mktemp(name)) for name in ("local", "slurm", "ray")}
    try:
        out["local"].start(config)
        try:
            slurm = request.getfixturevalue("local_slurm")
        except pytest.skip.Exception as exc:  # not installed here: only the Slurm test skips
            out["slurm"].skipped = str(exc)
        else:
            passed = [n for n in ("BUCKLE_CACHE", "HF_HOME") if n in os.environ]  # where data and models are
            out["slurm"].start(config, {"backend": "slurm", "defaults": {"env": list(ENV)}, "slurm": {
                "conf": str(slurm.conf), "export_env": ["PATH", "HOME", *passed]}})
        ray = request.getfixturevalue("ray_two")
        out["ray"].start(config, {"backend": "ray", "defaults": {"env": list(ENV)},
                                  "ray": {"address": ray.dashboard_url, "token_env": RAY_TOKEN_ENV,
                                          "entrypoint_num_cpus": 0.5}}, **{RAY_TOKEN_ENV: ray.token})
        yield out
    finally:
        for run in out.values():
            run.stop()


@pytest.fixture(scope="module")
def ray_two():
    """A real local Ray of a head and one more node, 2 CPUs each, token auth; stopped by pid after."""
    from buckle.core.devclusters.ray import LocalRayHead

    try:
        cluster = LocalRayHead(num_cpus=2, workers=1).start()
    except RuntimeError:  # e.g. a port taken between choosing and binding it: once more
        cluster = LocalRayHead(num_cpus=2, workers=1).start()
    try:
        yield cluster
    finally:
        before = cluster.pids()  # the agents below each raylet too: they show no tag, and outlived stop()
        cluster.stop()
        left = [pid for pid in before if pid in procs.processes()]
        assert left == [] and cluster.pids() == [], f"Ray processes left behind: {left}"


def _index(root: Path) -> dict:
    return json.loads((root / "pipeline.json").read_text())


def _figures(root: Path) -> dict:
    """Every figure of a run that reproduces: step keys, training losses, curation counts, the
    contamination table, each evaluation's metrics and per-prompt responses, the report's tables."""
    out = {}
    for name, entry in _index(root).items():
        run, m = root / entry["dir"] / "run", entry["metrics"]
        if (run / "summary.json").exists():
            summary = json.loads((run / "summary.json").read_text())
            rows = [json.loads(line) for line in (run / "responses.jsonl").read_text().splitlines()]
            m = {"metrics": summary["metrics"], "n_prompts": summary["n_prompts"],
                 "responses": [(r["id"], r["response"], r["verdicts"]["keyword"]["label"]) for r in rows]}
        elif name == "contamination":
            m = {k: m[k] for k in ("sizes", "dropped", "table")}  # not `clean`: paths in this run's dir
        elif name.startswith("curate"):
            m = {k: m[k] for k in CURATE_KEYS}
        elif name != "report":
            m = {k: m[k] for k in TRAIN_KEYS}
        out[name] = {"key": entry["key"], **m}  # the same key: the same resolved config and code
    report = root / _index(root)["report"]["dir"] / "run" / "report.json"
    out["report.json"] = [(r["label"], r["metrics"]) for r in json.loads(report.read_text())]
    md = (root / "report.md").read_text()
    out["report.md"] = re.sub(r"## Cost\n.*?(?=\n## )", "", md, flags=re.S)  # wall times only differ there
    return out


def _assert_same_as_local(run: Run, local: Run) -> None:
    local.finish()
    ours, theirs = _figures(run.root), _figures(local.root)
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name
    asr = {label: m["asr"]["value"] for label, m in theirs["report.json"]}
    assert len(set(asr.values())) > 1, asr  # the labels differ: an equal report is not a blank one


def _jobs(run: Run, backend: str) -> dict[str, str]:
    """Step name -> the log of its job; checks that each step was one job on the profile, which ended well."""
    records = {r.id: r for r in JobStore(run.state).all()}
    logs = {}
    for name, entry in _index(run.root).items():
        log = (run.root / entry["dir"] / "log.txt").read_text()
        head = re.match(r"\$ buckle (\S+) .*  \[job (bk-[0-9a-f]{8}) on two-nodes\]\n", log)
        assert head, (name, log[:500])
        rec = records[head.group(2)]
        assert (rec.backend, rec.command[1]) == (backend, head.group(1)), name
        assert rec.state in ("COMPLETED", "SUCCEEDED"), (name, rec.state)
        logs[name] = log
    assert len(records) == len(logs)  # one job per step, none more
    return logs


@pytest.mark.slurm
@pytest.mark.slow
def test_the_pipeline_on_a_two_node_slurm_reports_what_it_does_here(runs):
    run = runs["slurm"]
    run.finish()
    logs = _jobs(run, "slurm")
    nodes = {name: re.findall(r"^buckle: job \d+ on (n[12]) \(1 nodes\)", log, re.M) for name, log in logs.items()}
    assert all(len(found) == 1 for found in nodes.values()), nodes  # each step: one Slurm job on one node
    _assert_same_as_local(run, runs["local"])


def _ray_api(cluster, path: str) -> dict:
    req = urllib.request.Request(cluster.dashboard_url + path, headers={"Authorization": f"Bearer {cluster.token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.ray
@pytest.mark.slow
def test_the_pipeline_on_a_two_node_ray_reports_what_it_does_here(runs, ray_two):
    run = runs["ray"]
    run.finish()
    logs = _jobs(run, "ray")
    nodes = _ray_api(ray_two, "/api/v0/nodes?limit=10")["data"]["result"]["result"]
    alive = {n["node_id"] for n in nodes if n["state"] == "ALIVE"}
    assert len(alive) == 2, nodes
    for rec in JobStore(run.state).all():  # the cluster's own word: each job ran there, on one of its nodes
        info = _ray_api(ray_two, f"/api/jobs/{rec.backend_id}")
        assert info["status"] == "SUCCEEDED" and info["driver_node_id"] in alive, info
    for name in TRAININGS:  # a training runs as a Ray Train job
        assert " --executor ray --nodes 1 --nproc 1" in logs[name], logs[name][:1000]
        metrics = json.loads((run.root / _index(run.root)[name]["dir"] / "run" / "metrics.json").read_text())
        assert metrics["executor"] == "ray"
    _assert_same_as_local(run, runs["local"])
