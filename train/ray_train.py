"""`buckle train` on a Ray cluster: Ray Train's TorchTrainer runs `train.run.train` in each worker.

Ray Train starts the workers, sets RANK/WORLD_SIZE/MASTER_* and the process
group (gloo on CPU, nccl on GPU); inside, the same HF Trainer + DeepSpeed code
as under torchrun trains, wrapped by `prepare_trainer` and reporting every
checkpoint with `RayTrainReportCallback`. Checkpoints go to the run's output
directory (shared storage on a multi-node cluster), and `FailureConfig`
restarts the whole group from the last checkpoint every rank reported when a
worker dies. The caller connects the driver to Ray first.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

RUN_NAME = "ray-train"  # Ray's run folder under the output dir: OUTPUT/ray-train/checkpoint_*


def scaling_config(workers: int, nodes: int = 1, use_gpu: bool = False, cpus_per_worker: float = 1.0) -> Any:
    """Ray Train's ScalingConfig: `workers` ranks, one GPU (or `cpus_per_worker` CPUs) each.

    Several nodes spread the workers over machines; one node packs them.
    """
    from ray.train import ScalingConfig

    resources = {"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    return ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=resources,
                         placement_strategy="SPREAD" if nodes > 1 else "PACK")


def run_config(output_dir: str | Path, max_failures: int, keep: int | None, env: dict[str, str]) -> Any:
    """Ray Train's RunConfig: checkpoints under the output dir, restarts after lost workers."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig

    return RunConfig(name=RUN_NAME, storage_path=str(Path(output_dir).resolve()),
                     checkpoint_config=CheckpointConfig(num_to_keep=keep),
                     failure_config=FailureConfig(max_failures=max_failures),
                     worker_runtime_env={"env_vars": env})


def train_loop(config: dict) -> None:
    """One Ray Train worker: resume from Ray's checkpoint if there is one, then `train.run.train`."""
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    from buckle.train.config import TrainConfig
    from buckle.train.run import train

    cfg = TrainConfig.model_validate(config["cfg"])
    callbacks = [RayTrainReportCallback(), *config.get("callbacks", [])]
    checkpoint = ray.train.get_checkpoint()  # set after a restart, or on a resumed run
    if checkpoint is None:
        train(cfg, callbacks=callbacks, wrap=prepare_trainer)
        return
    with checkpoint.as_directory() as folder:
        hf = Path(folder) / RayTrainReportCallback.CHECKPOINT_NAME
        train(cfg, callbacks=callbacks, wrap=prepare_trainer, resume_from=str(hf))


def worker_env(use_gpu: bool) -> dict[str, str]:
    """Environment of the workers: DeepSpeed's CPU accelerator when there is no GPU."""
    env = {"TOKENIZERS_PARALLELISM": "false"}
    if not use_gpu:
        env["DS_ACCELERATOR"] = "cpu"
    return env


def fit_on_ray(cfg: Any, workers: int, nodes: int = 1, use_gpu: bool | None = None,
               cpus_per_worker: float = 1.0, max_failures: int = 1, callbacks: list | None = None) -> dict:
    """Run one training stage as a Ray Train job on the cluster the driver is connected to.

    Args:
        cfg: the resolved recipe (paths every node can read; output_dir on shared storage).
        workers: training ranks in all.
        nodes: machines to spread them over (1 packs them on one).
        use_gpu: one GPU per worker; None: when the cluster has GPUs.
        cpus_per_worker: CPUs each worker reserves.
        max_failures: group restarts allowed after a lost worker.
        callbacks: extra TrainerCallbacks, shipped to every worker (tests use it to inject faults).

    Returns:
        The metrics rank 0 wrote (metrics.json), with executor "ray" and the restarts.
    """
    import ray
    from ray.train.torch import TorchConfig, TorchTrainer

    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    out = Path(cfg.output_dir)
    if not cfg.resume:  # a fresh run: Ray would otherwise resume the old run of the same name
        shutil.rmtree(out / RUN_NAME, ignore_errors=True)
    trainer = TorchTrainer(
        train_loop, train_loop_config={"cfg": cfg.model_dump(), "callbacks": list(callbacks or [])},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=scaling_config(workers, nodes, use_gpu, cpus_per_worker),
        run_config=run_config(out, max_failures, cfg.save_total_limit, worker_env(use_gpu)))
    result = trainer.fit()
    if result.error:
        raise RuntimeError(f"Ray Train job failed: {result.error}")
    prune_unregistered(out / RUN_NAME)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.update(executor="ray", nodes=nodes,
                   checkpoint=result.checkpoint.path if result.checkpoint else None)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def prune_unregistered(run_dir: Path) -> list[str]:
    """Remove checkpoint folders Ray never registered (a worker died between the ranks' reports).

    Ray's retention (`num_to_keep`) only knows registered checkpoints, so such a
    folder would stay forever and look like a resumable one. Returns the names removed.
    """
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    if not snapshot.is_file():
        return []
    kept = {r["checkpoint_dir_name"] for r in json.loads(snapshot.read_text()).get("checkpoint_results", [])}
    stale = [p for p in run_dir.glob("checkpoint_*") if p.is_dir() and p.name not in kept]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in stale]
