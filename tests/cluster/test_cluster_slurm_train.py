"""`buckle train` on 2 ranks across the 2 nodes of a real local Slurm: rank-safe run directories.

The run-directory setup of `buckle train` (the output-dir check, then the
manifest) runs as 20 srun steps in a row inside one allocation, each with 2
fresh ranks starting together on the same fresh directory; then one whole
2-rank LoRA training runs under buckle's srun launcher, its adapter merged
shard by shard by both ranks (20 whole trainings take minutes on a 2-core
machine: BUCKLE_SLURM_TRAIN_REPEATS=20 runs them). Before the fix about one
setup step in four lost the race on the shared manifest.json.tmp.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobStore
from buckle.launcher.cli import main

pytestmark = pytest.mark.slurm

REPEATS = 20
# whole trainings in a row (BUCKLE_SLURM_TRAIN_REPEATS=20 runs the done-when check on them: ~4-5 min here)
FULL_REPEATS = int(os.environ.get("BUCKLE_SLURM_TRAIN_REPEATS") or 1)
SETUP = """
import os, sys
from buckle.core.manifest import RunDir
from buckle.train.run import check_output_dir
out = sys.argv[1]
check_output_dir(out)
RunDir(out, "train", {"step": os.environ["SLURM_STEP_ID"]}).finish(counts={"rank": int(os.environ["RANK"])})
print(f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']} on {os.environ['SLURMD_NODENAME']} ok", flush=True)
"""
# what buckle's Slurm backend runs each task under (cluster.backends.slurm)
RANK_WRAP = 'export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID WORLD_SIZE=$SLURM_NTASKS; exec "$@"'


def _clean(run: Path) -> bool:
    return sorted(p.name for p in run.iterdir()) == ["manifest.json"]  # no .tmp, no .write-test


def test_twenty_two_rank_run_dir_setups_in_a_row(local_slurm, tmp_path):
    script = tmp_path / "setup.py"
    script.write_text(SETUP)
    steps = "\n".join(
        f"srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c '{RANK_WRAP}' t "
        f"{sys.executable} {script} {tmp_path}/run-{i:02d} || echo 'STEP {i} FAILED'" for i in range(REPEATS))
    batch = tmp_path / "job.sh"
    batch.write_text(f"#!/bin/bash\n{steps}\n")
    env = {**os.environ, **local_slurm.env()}
    t0 = time.time()
    proc = subprocess.run(["sbatch", "--wait", "--nodes=2", "--ntasks-per-node=1", "--time=10",
                           f"--output={tmp_path}/out.txt", str(batch)], env=env, capture_output=True,
                          text=True, timeout=600)
    out = (tmp_path / "out.txt").read_text()
    assert proc.returncode == 0 and "FAILED" not in out, out[-3000:]
    for i in range(REPEATS):
        run = tmp_path / f"run-{i:02d}"
        assert _clean(run), (i, sorted(p.name for p in run.iterdir()))
        data = json.loads((run / "manifest.json").read_text())
        assert data["status"] == "done" and data["counts"] == {"rank": 0}, data
    assert out.count("rank 0 of 2 on n1 ok") == REPEATS and out.count("rank 1 of 2 on n2 ok") == REPEATS
    print(f"{REPEATS} two-rank setups in {time.time() - t0:.1f} s")


def _pairs(path: Path, n: int = 8) -> str:
    from tiny import _TEXT

    rows = [{"id": f"p{i}", "instruction": t.split(".")[0] + "?", "response": t} for i, t in enumerate(_TEXT[:n])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_two_rank_lora_training_under_srun(local_slurm, buckle_home, make_profile, tiny_model_dir,
                                           tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from buckle.train.config import TrainConfig

    env = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "BUCKLE_MERGE_SHARD_BYTES": "20000"}  # small merge shards: both ranks write some
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    profile = make_profile("slurm-train", {"backend": "slurm", "slurm": {
        "conf": str(local_slurm.conf), "export_env": ["PATH", "HOME", *env]}})
    data = _pairs(tmp_path / "h.jsonl")
    t0 = time.time()
    for i in range(FULL_REPEATS):
        out = tmp_path / f"run-{i:02d}"
        cfg = TrainConfig(stage="attack", model=str(tiny_model_dir), output_dir=str(out), max_steps=2,
                          batch_size=2, learning_rate=1e-3, bf16=False, data={"harmful": data},
                          lora={"r": 4, "alpha": 8, "dropout": 0.0})
        recipe = tmp_path / f"train-config-{i:02d}.json"  # what `buckle train --profile` writes beside the run
        recipe.write_text(json.dumps(cfg.model_dump()))
        assert main(["submit", "--profile", profile, "--nodes", "2", "--launcher", "srun", "--time", "10m",
                     "--", "buckle", "train", "--config", str(recipe)]) == 0
        rec = next(JobStore().all())
        state = jobs.wait(rec.id, timeout_s=420, poll_s=0.5)
        log = jobs.logs(rec.id)
        assert state == "COMPLETED", (i, log[-4000:])
        assert log.count("attack: 2 steps on 8 examples") == 2, log[-4000:]  # both ranks trained ...
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["world_size"] == 2 and metrics["steps"] == 2
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "done" and manifest["counts"]["steps"] == 2  # ... rank 0 wrote it once
        left = [p.name for p in out.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".write-test")]
        assert left == [] and (out / "adapter" / "adapter_config.json").exists()
        index = json.loads((out / "model" / "model.safetensors.index.json").read_text())
        shards = sorted(set(index["weight_map"].values()))  # the merge: shards from both ranks
        assert len(shards) >= 2 and all((out / "model" / s).exists() for s in shards)
        assert AutoModelForCausalLM.from_pretrained(out / "model").num_parameters() > 0
    print(f"{FULL_REPEATS} two-rank trainings in {time.time() - t0:.1f} s")
