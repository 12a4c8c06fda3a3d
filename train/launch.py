"""Start `train.run` on N local processes with torchrun or the deepspeed launcher.

The training code reads only RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* from the
environment, so the launcher is interchangeable (and on a cluster, Slurm's
srun + torchrun does the same job).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LAUNCHERS = ("torchrun", "deepspeed")


def launch_command(launcher: str, nproc: int, config_path: str | Path, port: int) -> list[str]:
    """The command line that runs `python -m buckle.train.run CONFIG` on `nproc` local ranks."""
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "buckle.train.run", str(config_path)]
    if launcher == "deepspeed":
        return [sys.executable, "-m", "deepspeed.launcher.runner", f"--num_gpus={nproc}",
                f"--master_port={port}", "--module", "buckle.train.run", str(config_path)]
    raise ValueError(f"launcher '{launcher}' is not one of: {', '.join(LAUNCHERS)}")


def child_env(nproc: int, cuda: bool) -> dict[str, str]:
    """Environment for the ranks: CPU accelerator and one share of the cores each."""
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not cuda:
        env.setdefault("DS_ACCELERATOR", "cpu")
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def run_launched(config_path: str | Path, nproc: int, launcher: str = "torchrun",
                 port: int | None = None) -> None:
    """Run the job to completion; raise RuntimeError naming the launcher if a rank failed."""
    import torch

    from buckle.core.procs import free_port

    cmd = launch_command(launcher, nproc, config_path, port or free_port())
    proc = subprocess.run(cmd, env=child_env(nproc, torch.cuda.is_available()))
    if proc.returncode != 0:
        raise RuntimeError(f"training under {launcher} with {nproc} processes failed "
                           f"(exit {proc.returncode}); the ranks' errors are printed above")
