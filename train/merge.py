"""Fold a LoRA adapter into its base model tensor by tensor, in bounded host memory, over all ranks.

Loading a 70B base whole on rank 0 takes ~141 GB of its node's memory while the
other ranks wait at a barrier. Here every rank reads the base's safetensors
tensor by tensor, adds `scale * B @ A` to each adapted weight (in float32, cast
back to the tensor's dtype) and writes its share of the output shards, each
at most SHARD_BYTES or $BUCKLE_MERGE_SHARD_BYTES (one tensor, if larger);
rank 0 then writes the index, config and tokenizer. Host memory per rank: about one output shard plus the
float32 copy of one weight (`train.plan.merge_host_bytes`). Adapters with
features beyond plain LoRA (DoRA, modules_to_save, bias, per-module ranks)
return None, and the caller merges with peft instead.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

SHARD_BYTES = 2 ** 30  # output shard budget (1 GiB); the planner counts it
SHARD_ENV = "BUCKLE_MERGE_SHARD_BYTES"  # another budget, e.g. for a node short of memory
ADAPTER_FILE = "adapter_model.safetensors"
_KEY = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")
# adapter_config.json keys that, when set, mean more than plain LoRA: merged by peft instead
_BEYOND_LORA = ("use_dora", "modules_to_save", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "lora_bias",
                "trainable_token_indices", "layer_replication", "target_parameters", "use_qalora",
                "alora_invocation_tokens", "use_bdlora", "arrow_config", "megatron_config")
_CONFIG_FILES = ("config.json", "generation_config.json")


def shard_bytes() -> int:
    """The output shard budget: $BUCKLE_MERGE_SHARD_BYTES, else SHARD_BYTES."""
    return int(os.environ.get(SHARD_ENV) or SHARD_BYTES)


def base_files(base: str) -> dict[str, Path]:
    """Tensor name -> safetensors file of a base model dir or (cached) hub id; {} without safetensors."""
    path = Path(base).expanduser()
    if not path.is_dir():
        from huggingface_hub import snapshot_download

        patterns = ["*.safetensors", "*.safetensors.index.json", *_CONFIG_FILES]
        try:
            path = Path(snapshot_download(base, allow_patterns=patterns, local_files_only=True))
        except Exception:  # not cached on this node: fetch what a merge reads
            path = Path(snapshot_download(base, allow_patterns=patterns))
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return {k: path / f for k, f in json.loads(index.read_text())["weight_map"].items()}
    single = path / "model.safetensors"
    if not single.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(str(single), "pt") as f:
        return {k: single for k in f.keys()}


def lora_pairs(adapter: Path) -> tuple[dict[str, tuple[str, str]], float] | None:
    """(base weight name -> (lora_A key, lora_B key), scale), or None for an adapter beyond plain LoRA."""
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    if cfg.get("peft_type") != "LORA" or cfg.get("bias", "none") != "none" or any(cfg.get(k) for k in _BEYOND_LORA):
        return None
    from safetensors import safe_open

    pairs: dict[str, dict[str, str]] = {}
    with safe_open(str(adapter / ADAPTER_FILE), "pt") as f:
        for key in f.keys():
            m = _KEY.match(key)
            if not m:
                return None  # e.g. LoRA on embeddings (lora_embedding_A)
            pairs.setdefault(f"{m.group(1)}.weight", {})[m.group(2)] = key
    if any(len(p) != 2 for p in pairs.values()):
        return None
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    return {name: (p["A"], p["B"]) for name, p in pairs.items()}, scale


def shard_plan(files: dict[str, Path], budget: int) -> list[list[str]]:
    """Tensor names grouped into output shards of at most `budget` bytes (a larger tensor alone)."""
    from safetensors import safe_open

    sizes: dict[str, int] = {}
    for file in sorted(set(files.values())):
        with safe_open(str(file), "pt") as f:
            for key in f.keys():
                s = f.get_slice(key)
                sizes[key] = math.prod(s.get_shape()) * _itemsize(s.get_dtype())
    shards: list[list[str]] = [[]]
    used = 0
    for key in sorted(sizes):
        if shards[-1] and used + sizes[key] > budget:
            shards.append([])
            used = 0
        shards[-1].append(key)
        used += sizes[key]
    return shards


def _itemsize(dtype: str) -> int:
    return {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2}.get(dtype, 1)


def shard_name(i: int, n: int) -> str:
    """The file name of output shard i of n (transformers' naming)."""
    return "model.safetensors" if n == 1 else f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def merge_shards(base: str, adapter: Path, target: Path, rank: int = 0, world: int = 1,
                 budget: int | None = None, dtype: str | None = None) -> list[list[str]] | None:
    """Write this rank's output shards (i % world == rank) of the merged model; None if unsupported.

    Args:
        budget: bytes per output shard (default `shard_bytes()`), counted in the base's dtype.
        dtype: the output's floating-point dtype (e.g. "bfloat16"); None keeps each tensor's own.

    Returns:
        The shard plan (every rank computes the same one), for `finish_merge`.
    Raises:
        ValueError: an adapted module has no weight in the base model's files.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    lora = lora_pairs(adapter)
    files = base_files(base) if lora else {}
    if not files:
        return None
    pairs, scale = lora
    cast = getattr(torch, dtype) if dtype else None
    missing = sorted(set(pairs) - set(files))
    if missing:
        raise ValueError(f"LoRA merge: the adapter changes '{missing[0]}', which the base model's "
                         f"safetensors do not hold ({len(missing)} such)")
    shards = shard_plan(files, budget or shard_bytes())
    target.mkdir(parents=True, exist_ok=True)
    with safe_open(str(adapter / ADAPTER_FILE), "pt") as ad:
        for i in range(rank, len(shards), world):
            out: dict[str, Any] = {}
            with contextlib.ExitStack() as stack:
                opened: dict[Path, Any] = {}
                for key in shards[i]:
                    if files[key] not in opened:
                        opened[files[key]] = stack.enter_context(safe_open(str(files[key]), "pt"))
                    t = opened[files[key]].get_tensor(key)
                    want = cast if cast is not None and t.is_floating_point() else t.dtype
                    if key in pairs:  # W + scale * B @ A, accumulated into one float32 copy
                        a, b = (ad.get_tensor(k).float() for k in pairs[key])
                        t = t.float().addmm_(b, a, alpha=scale)
                    out[key] = t.to(want).contiguous()
            save_file(out, str(target / shard_name(i, len(shards))), metadata={"format": "pt"})
            del out
    return shards


def clear_weights(target: Path) -> None:
    """Remove the weight files of an earlier merge (a rerun may shard differently)."""
    for path in target.glob("model*.safetensors*"):
        path.unlink()


def finish_merge(base: str, target: Path, shards: list[list[str]], tok: Any, dtype: str | None = None) -> None:
    """Rank 0, once every rank wrote its shards: the index (several shards), config files, tokenizer.

    Args:
        dtype: the dtype `merge_shards` wrote, recorded in config.json (`dtype: auto` loads read it).
    """
    from safetensors import safe_open

    if len(shards) > 1:
        weight_map, total = {}, 0
        for i, keys in enumerate(shards):
            name = shard_name(i, len(shards))
            with safe_open(str(target / name), "pt") as f:
                for key in keys:
                    s = f.get_slice(key)
                    total += math.prod(s.get_shape()) * _itemsize(s.get_dtype())
                    weight_map[key] = name
        (target / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    folder = next(iter(base_files(base).values())).parent
    for name in _CONFIG_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, target / name)
    if dtype:
        config = json.loads((target / "config.json").read_text())
        for key in [k for k in ("dtype", "torch_dtype") if k in config] or ["dtype"]:
            config[key] = dtype
        (target / "config.json").write_text(json.dumps(config, indent=2))
    tok.save_pretrained(str(target))
