"""Shipped DeepSpeed configs (ZeRO-2, ZeRO-3, ZeRO-3 with CPU offload).

Batch size, accumulation and clipping are "auto": the training arguments are
the one place they live. Only the offload config names an optimizer, because
offloaded optimizer states want DeepSpeed's CPU Adam; otherwise the Trainer
builds a torch AdamW (nothing to JIT-compile).
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the shipped configs (usable as `deepspeed: NAME`)."""
    return sorted(p.stem for p in _HERE.glob("*.json"))


def resolve(name_or_path: str) -> Path:
    """The JSON file of a shipped config name, or an existing JSON file path."""
    shipped = _HERE / f"{name_or_path.replace('_', '-')}.json"
    if shipped.is_file():
        return shipped
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    raise FileNotFoundError(f"deepspeed config '{name_or_path}' not found; shipped: {', '.join(names())} "
                            "(or give a path to a JSON file)")
