"""Shipped DeepSpeed configs (ZeRO-2, ZeRO-3, ZeRO-3 with CPU offload of the optimizer and the
parameters, or of the optimizer only).

Batch size, accumulation and clipping are "auto": the training arguments are
the one place they live. Only the offload configs name an optimizer, because
offloaded optimizer states want DeepSpeed's CPU Adam; otherwise the Trainer
builds a torch AdamW (nothing to JIT-compile).
"""
from __future__ import annotations

from pathlib import Path

from buckle.core.shipped import resolve_shipped, shipped_names

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the shipped configs (usable as `deepspeed: NAME`)."""
    return shipped_names([_HERE], ".json")


def resolve(name_or_path: str) -> Path:
    """The JSON file of a shipped config name ("zero3_offload" = "zero3-offload"), or an existing file."""
    return resolve_shipped(name_or_path, _HERE, ".json", "deepspeed config", " (or give a path to a JSON file)",
                           normalize=lambda name: name.replace("_", "-"))
