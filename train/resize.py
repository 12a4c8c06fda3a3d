"""Resume a checkpoint on another number of ranks than it was saved with.

Each checkpoint records the world size and batch shape it was saved with
(`world.json`, written on save). A resume at another world size keeps the
global batch (per-device batch x accumulation x world) by changing gradient
accumulation, and, under DeepSpeed, converts the ZeRO checkpoint to DeepSpeed's
universal format (`ds_to_universal --inject_missing_state`: HF Trainer
checkpoints lack the universal state) and loads it with
`"checkpoint": {"load_universal": true}` for that one resume only; the next
ordinary resume reads the plain checkpoints written after it.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

RECORD = "world.json"
UNIVERSAL_DIR = "checkpoints-universal"


class WorldRecord(TrainerCallback):
    """Writes world.json into each checkpoint (rank 0), then waits for every rank to finish saving.

    The barrier also means later on_save callbacks (Ray's report callback copies
    the folder) see a complete checkpoint on every rank.
    """

    def __init__(self, world: int, rank: int, zero_stage: int | None) -> None:
        self.world, self.rank, self.zero_stage = world, rank, zero_stage

    def on_save(self, args, state, control, **kwargs):
        if self.rank == 0:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            record = {"world_size": self.world, "batch_size": args.per_device_train_batch_size,
                      "grad_accum": args.gradient_accumulation_steps, "zero_stage": self.zero_stage,
                      "global_batch": self.world * args.per_device_train_batch_size
                      * args.gradient_accumulation_steps}
            tmp = folder / f"{RECORD}.tmp"
            tmp.write_text(json.dumps(record, indent=2))
            tmp.replace(folder / RECORD)
        barrier()


def barrier() -> None:
    """Wait for all ranks when a process group is up (no-op in a single plain process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def saved_world(checkpoint: str | Path) -> dict | None:
    """What a checkpoint was saved with: its world.json, else the ZeRO partition count DeepSpeed wrote.

    Returns None for a checkpoint that records neither (treated as the same world size).
    """
    folder = Path(checkpoint)
    if (folder / RECORD).is_file():
        return json.loads((folder / RECORD).read_text())
    steps = sorted(p for p in folder.glob("global_step*") if p.is_dir() and not p.name.endswith("_universal"))
    if steps:
        shards = list(steps[-1].glob("*zero_pp_rank_*_optim_states.pt"))
        if shards:
            return {"world_size": len(shards)}
    return None


def keep_global_batch(saved: dict, batch_size: int, world: int) -> int:
    """Gradient accumulation that keeps the saved global batch at a new world size.

    Raises:
        ValueError: naming the fields, when the saved global batch does not divide evenly.
    """
    total = saved.get("global_batch")
    if total is None:
        raise ValueError(f"checkpoint saved with {saved['world_size']} ranks records no global batch: "
                         "cannot keep it at another world size")
    if total % (batch_size * world):
        raise ValueError(f"cannot keep the global batch {total} (batch_size {saved['batch_size']} x grad_accum "
                         f"{saved['grad_accum']} x {saved['world_size']} ranks) at {world} ranks: "
                         f"batch_size {batch_size} x {world} ranks does not divide it; choose batch_size "
                         f"and the number of ranks so that batch_size x ranks divides {total}")
    return total // (batch_size * world)


def to_universal(checkpoint: Path, target: Path) -> Path:
    """A copy of an HF checkpoint whose DeepSpeed state is in universal format (made once).

    The small Trainer files (trainer_state.json, RNG states, ...) are copied; the
    ZeRO state goes through `ds_to_universal`; the folder appears under its final
    name only when complete.
    """
    if (target / "latest_universal").is_file():
        return target
    step = max((p for p in checkpoint.glob("global_step*") if p.is_dir() and p.name[11:].isdigit()),
               key=lambda p: int(p.name[11:]))
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in checkpoint.iterdir():
        if item.is_file() and item.name not in ("latest", "zero_to_fp32.py"):
            shutil.copy2(item, tmp / item.name)
    cmd = [sys.executable, "-m", "deepspeed.checkpoint.ds_to_universal", "--input_folder", str(step),
           "--output_folder", str(tmp / f"{step.name}_universal"), "--inject_missing_state"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"ds_to_universal failed on {step}: {proc.stderr.strip()[-1500:]}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def universal_config(ds_config: str, out: Path) -> str:
    """The DeepSpeed config with `load_universal` on, written beside the run (for one resume)."""
    data = json.loads(Path(ds_config).read_text())
    data["checkpoint"] = {**data.get("checkpoint", {}), "load_universal": True}
    path = out / "deepspeed-universal.json"
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def prepare_resume(resume: str, cfg: Any, ds_config: str | None, world: int, rank: int) -> tuple[str, Any, str | None, dict | None]:
    """Adapt a resume to the current world size.

    Returns:
        (checkpoint to load, config with accumulation adjusted, DeepSpeed config,
        {"from_world", "to_world", "grad_accum"} or None when the world size is unchanged).
    """
    saved = saved_world(resume)
    if saved is None or saved["world_size"] == world:
        return resume, cfg, ds_config, None
    accum = keep_global_batch(saved, cfg.batch_size, world)
    cfg = cfg.model_copy(update={"grad_accum": accum})
    change = {"from_world": saved["world_size"], "to_world": world, "grad_accum": accum}
    if not ds_config:  # a plain Trainer checkpoint holds whole tensors: any world size loads it
        return resume, cfg, ds_config, change
    out = Path(cfg.output_dir)
    target = out / UNIVERSAL_DIR / Path(resume).name
    if rank == 0:
        to_universal(Path(resume), target)
        ds_config = universal_config(ds_config, out)
    barrier()
    return str(target), cfg, str(out / "deepspeed-universal.json"), change
