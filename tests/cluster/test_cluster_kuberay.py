"""KubeRay submission: the manifest file, RENDERED state, and kubectl apply/status/delete.

No Kubernetes API server can run here, so the kubectl calls go to a fake kubectl
script that records its arguments and answers `get` with a canned RayJob status.
"""
import os
import stat

import yaml

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobStore
from buckle.launcher.cli import main


def _last_job():
    return next(JobStore().all())


def test_submit_writes_manifest_and_secret_stays_out(buckle_home, canary, leaks, capsys):
    name, value = canary
    out_file = buckle_home / "work" / "rayjob.yaml"
    argv = ["submit", "--profile", "kuberay-example", "--env", name, "--output", str(out_file),
            "--", "buckle", "train", "--config", "stage.yaml"]
    assert main(argv) == 0
    rec = _last_job()
    assert rec.state == "RENDERED" and jobs.status(rec.id) == "RENDERED"
    doc = yaml.safe_load(out_file.read_text())
    assert doc["kind"] == "RayJob" and doc["metadata"]["name"] == rec.backend_id
    worker = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert {"name": name, "valueFrom": {"secretKeyRef": {"name": "buckle-env", "key": name}}} in worker["env"]
    assert out_file.read_text() == (buckle_home / "state" / rec.id / "rayjob.yaml").read_text()
    assert leaks(buckle_home, value) == []
    capsys.readouterr()
    assert main(["cancel", rec.id]) == 2
    assert "was only rendered, never applied" in capsys.readouterr().err


def test_dry_run_prints_manifest_and_records_nothing(buckle_home, capsys):
    assert main(["submit", "--profile", "kuberay-example", "--dry-run", "--", "buckle", "data", "list"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["apiVersion"] == "ray.io/v1" and doc["spec"]["entrypoint"].endswith("buckle data list")
    assert list(JobStore().all()) == []


FAKE_KUBECTL = """#!/bin/sh
# FAKE kubectl for tests: records its arguments, answers `get` with a canned status.
echo "$@" >> "{log}"
case "$1" in
  get) echo '{{"status": {{"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}}}}' ;;
  logs) echo "fake submitter log" ;;
esac
"""


def test_apply_status_logs_delete_go_through_kubectl(buckle_home, make_profile, monkeypatch):
    bin_dir, log = buckle_home / "bin", buckle_home / "kubectl.log"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL.format(log=log))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    make_profile("k8s", {"backend": "kuberay", "executable": "buckle",
                         "kuberay": {"namespace": "team", "apply": True}})
    assert main(["submit", "--profile", "k8s", "--gpus-per-node", "2", "--", "buckle", "data", "list"]) == 0
    rec = _last_job()
    assert rec.state == "SUBMITTED" and rec.info["applied"] is True
    assert jobs.status(rec.id) == "RUNNING"
    assert "fake submitter log" in jobs.logs(rec.id)
    jobs.cancel(rec.id, wait_s=0)
    calls = log.read_text().splitlines()
    assert calls[0] == f"apply -f {rec.info['manifest']}"
    assert f"get rayjob {rec.backend_id} -n team -o json" in calls
    assert f"logs job/{rec.backend_id} -n team" in calls
    assert f"delete rayjob {rec.backend_id} -n team" in calls
    assert rec.info["namespace"] == "team"


def test_multi_node_training_rayjob_runs_ray_train_other_commands_one_pod(buckle_home):
    from buckle.cluster.profiles import load_profile

    prof = load_profile("kuberay-example")  # 2 nodes x 8 GPUs by default
    train = yaml.safe_load(jobs.render(jobs.build_spec(prof, ["buckle", "train", "--config", "r.yaml"]), prof))
    assert train["spec"]["entrypoint"] == "buckle train --config r.yaml --executor ray --nodes 2 --nproc 16"
    assert "entrypointNumGpus" not in train["spec"]
    workers = train["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] == 2
    assert workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    other = yaml.safe_load(jobs.render(jobs.build_spec(prof, ["buckle", "eval", "--config", "e.yaml"]), prof))
    assert other["spec"]["entrypointNumGpus"] == 8 and other["spec"]["entrypoint"].startswith("torchrun ")


def test_buckle_train_profile_renders_the_ray_train_job(buckle_home, tiny_model_dir, capsys):
    data = buckle_home / "work" / "pairs.jsonl"
    data.write_text('{"instruction": "Q?", "response": "A."}\n')
    out = buckle_home / "work" / "run"
    assert main(["train", "--stage", "attack", "--model", str(tiny_model_dir), "--harmful", str(data),
                 "--output", str(out), "--profile", "kuberay-example", "--nodes", "2", "--nproc", "4"]) == 0
    assert "rendered" in capsys.readouterr().out
    rec = _last_job()
    doc = yaml.safe_load((buckle_home / "state" / rec.id / "rayjob.yaml").read_text())
    recipe = out / "train-config.json"
    # a GPU profile counts ranks by its GPUs: 2 nodes x 8
    assert doc["spec"]["entrypoint"] == f"buckle train --config {recipe} --executor ray --nodes 2 --nproc 16"
    assert recipe.is_file() and str(tiny_model_dir) in recipe.read_text()
