"""What submission renders: the sbatch script, the Ray submission, the RayJob manifest (golden)."""
import json
from pathlib import Path

import pytest
import yaml

from buckle.cluster import jobs
from buckle.cluster.backends import kuberay
from buckle.cluster.profiles import load_profile

GOLDEN = Path(__file__).parent / "golden" / "rayjob.yaml"


def _spec(profile, **kw):
    return jobs.build_spec(profile, ["buckle", "train", "--config", "stage.yaml"], **kw)


def test_sbatch_multi_node_torchrun(buckle_home):
    prof = load_profile("slurm-example")
    text = jobs.render(_spec(prof, nodes=4, gpus_per_node=8, time="2h", name="big"), prof, "bk-00000001")
    lines = text.splitlines()
    for want in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --time=0-02:00:00",
                 "#SBATCH --partition=gpu", "#SBATCH --account=my-account", "#SBATCH --exclusive",
                 "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=64", "#SBATCH --job-name=big",
                 "export NCCL_DEBUG=WARN"):
        assert want in lines, want
    export = next(ln for ln in lines if ln.startswith("#SBATCH --export="))
    assert export.endswith(",HF_TOKEN")  # the profile's env names, by name
    launch = lines[-1]
    assert launch.startswith("srun --export=ALL --kill-on-bad-exit=1 --ntasks-per-node=1 ")
    assert "--nnodes=$SLURM_JOB_NUM_NODES --nproc-per-node=8" in launch
    assert "--rdzv-endpoint=$MASTER_ADDR:$MASTER_PORT" in launch
    assert launch.endswith("buckle train --config stage.yaml")
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1' in text
    assert "{{" not in text


def test_sbatch_srun_launcher_sets_rank_variables(buckle_home):
    prof = load_profile("slurm-example")
    text = jobs.render(_spec(prof, nodes=2, gpus_per_node=4, launcher="srun"), prof, "bk-00000002")
    assert "#SBATCH --ntasks-per-node=4" in text and "#SBATCH --cpus-per-task=8" in text
    assert "export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID WORLD_SIZE=$SLURM_NTASKS" in text


def test_ray_submission_names_env_vars_without_values(buckle_home, monkeypatch, canary):
    name, value = canary
    prof = load_profile("ray-local")
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    sub = json.loads(jobs.render(_spec(prof, env=[name], gpus_per_node=2), prof, "bk-00000003"))
    assert sub["runtime_env"]["env_vars"] == {name: "<from submitter env>"}
    # `buckle train` runs as a Ray Train job: its workers take the GPUs, not the entrypoint
    assert "entrypoint_num_gpus" not in sub and sub["entrypoint"].endswith("--executor ray --nodes 1 --nproc 2")
    assert sub["entrypoint"].startswith(f"cd {buckle_home / 'work'} && ")
    assert value not in json.dumps(sub)


def test_local_refuses_multi_node_ray_trains_across_nodes(buckle_home):
    prof = load_profile("local")
    with pytest.raises(ValueError, match="nodes: 2 needs a Slurm, Ray or KubeRay profile"):
        jobs.render(_spec(prof, nodes=2), prof)
    prof = load_profile("ray-local")
    sub = json.loads(jobs.render(_spec(prof, nodes=2, tasks_per_node=2), prof))
    assert sub["entrypoint"].endswith("buckle train --config stage.yaml --executor ray --nodes 2 --nproc 4")


def test_rayjob_manifest_matches_golden_file(buckle_home):
    prof = load_profile("kuberay-example")
    spec = _spec(prof, nodes=3, gpus_per_node=4, env=["HF_TOKEN", "OPENAI_API_KEY"], time="6h", name="Train-Pre")
    text = jobs.render(spec, prof, "bk-0123abcd")
    assert text == GOLDEN.read_text(), "manifest changed; if on purpose, regenerate the golden file"


def test_rayjob_manifest_structure(buckle_home):
    prof = load_profile("kuberay-example")
    spec = _spec(prof, nodes=3, gpus_per_node=4, env=["HF_TOKEN"])
    doc = yaml.safe_load(jobs.render(spec, prof, "bk-0123abcd"))
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    cluster = doc["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    workers = cluster["workerGroupSpecs"][0]
    assert workers["replicas"] == 3
    box = workers["template"]["spec"]["containers"][0]
    assert box["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert box["env"] == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "buckle-env", "key": "HF_TOKEN"}}}]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert "entrypointNumGpus" not in doc["spec"]  # Ray Train's workers take the GPUs
    assert doc["metadata"]["name"] == kuberay.resource_name(spec, "bk-0123abcd")
