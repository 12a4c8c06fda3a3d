"""`buckle plan`'s memory verdict for a pipeline step where it is placed: trainings and engine steps.

Every step of a pipeline trains or serves the pipeline's model (its trainings start
from it), so one architecture covers them; a curation's reviser is planned as its
own engine beside the scorer. The numbers are train.plan's; this module only picks
the row that the step's recipe or engine settings name.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable, Optional

from buckle.launcher.pipeline.resources import Placement
from buckle.train.config import TrainConfig
from buckle.train.deepspeed import resolve as resolve_deepspeed
from buckle.train.plan import GIB, HEADROOM, Arch, plan, serving_memory

DEFAULT_GPU_MEMORY = "80GB"  # buckle plan's default, where a profile does not say
# the planner's prompt allowance per engine use (its default sequence minus its default new tokens)
PROMPT_TOKENS = {"curate": 1024 - 160, "eval": 576 - 64}
BATCH_KEY = {"curate": "gen_batch_size", "eval": "batch_size"}
Archs = Callable[[str], Arch]  # model name -> architecture (raises ValueError when unknown)


def zero_layout(deepspeed: str) -> tuple[int, str]:
    """(ZeRO stage, offload: none, optimizer or all) of a DeepSpeed config name or JSON file."""
    zero = json.loads(resolve_deepspeed(deepspeed).read_text()).get("zero_optimization", {})

    def offloaded(key: str) -> bool:
        return (zero.get(key) or {}).get("device", "none") not in ("none", None)
    return int(zero.get("stage", 0)), "all" if offloaded("offload_param") else \
        "optimizer" if offloaded("offload_optimizer") else "none"


def train_verdict(arch: Arch, recipe: dict[str, Any], at: Placement, gpu_memory: float,
                  node_memory: Optional[float]) -> dict[str, Any]:
    """The planner's row for this recipe (full or LoRA, ZeRO stage, offload) on the step's GPUs; with a
    LoRA merge, also the merge's host memory per node (train.merge: each rank merges its share of the
    shards, tensor by tensor; the planner's row counts it against the node's memory).
    """
    cfg = TrainConfig.model_validate(recipe)
    if not cfg.deepspeed:
        return {"fits": None, "note": "not planned: buckle plan covers DeepSpeed ZeRO-2/3 recipes"}
    zero, offload = zero_layout(cfg.deepspeed)
    method = "lora" if cfg.lora else "full"
    merging = bool(cfg.lora and cfg.lora.merge)
    rows = plan(arch, at.gpus_per_node, gpu_memory, at.nodes, cfg.batch_size, cfg.max_length,
                cfg.lora.r if cfg.lora else 16, cfg.gradient_checkpointing, node_memory, lora_merge=merging)
    row = next((r for r in rows if (r.method, r.zero, r.offload) == (method, zero, offload)), None)
    if row is None:
        return {"fits": None, "note": f"not planned: ZeRO stage {zero}"}
    out: dict[str, Any] = {"use": "train", "row": asdict(row), "fits": row.fits}
    if merging:
        held = row.cpu_gib_per_node + row.merge_cpu_gib
        out["merge"] = {"cpu_gib": row.merge_cpu_gib, "with_training_cpu_gib": round(held, 1),
                        "fits": None if node_memory is None else held * GIB <= node_memory}
    return out


def engine_verdict(archs: Archs, models: list[str], use: str, conf: dict[str, Any], gpu_memory: float) -> dict:
    """The planner's serving rows for each engine a step holds (the scorer, and a reviser of its own) on
    tensor x pipeline parallel GPUs, at the step's batch and token budget; they share those GPUs."""
    gpus = conf["tensor_parallel_size"] * conf["pipeline_parallel_size"]
    batch, seq = conf[BATCH_KEY[use]], PROMPT_TOKENS[use] + conf["max_new_tokens"]
    rows = [serving_memory(archs(m), gpus, gpu_memory, uses=((use, batch, seq),))[0] for m in models]
    together = sum(r.gpu_gib for r in rows)
    return {"use": use, "gpus_per_engine": gpus, "rows": [{"model": m, **asdict(r)} for m, r in zip(models, rows)],
            "fits": all(r.fits for r in rows) and together * GIB <= HEADROOM * gpu_memory}


def summary(verdict: Optional[dict[str, Any]]) -> str:
    """One line of a verdict, e.g. `fits: lora ZeRO-3 offload all, 9.6 GiB/GPU, host 68.6 GiB/node`."""
    if verdict is None:
        return "-"
    if verdict.get("fits") is None:
        return verdict.get("note", "not planned")
    word = "fits" if verdict["fits"] else "DOES NOT FIT"
    if verdict["use"] == "train":
        r = verdict["row"]
        text = (f"{word}: {r['method']} ZeRO-{r['zero']} offload {r['offload']}, {r['gpu_gib']:.1f} GiB/GPU, "
                f"host {r['cpu_gib_per_node']:.1f} GiB/node")
        merge = verdict.get("merge")
        if merge:
            text += f"; host with the LoRA merge {merge['with_training_cpu_gib']:.1f} GiB/node" + \
                    ("" if merge["fits"] is not None else " (node memory unknown: not checked)")
        return text
    engines = ", ".join(f"{r['model']} from tp {r['tp']} ({r['gpu_gib']:.1f} GiB/GPU there)" for r in verdict["rows"])
    return f"{word}: {verdict['use']} engine on {verdict['gpus_per_engine']} GPU(s); fits {engines}"
