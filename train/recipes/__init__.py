"""Shipped training recipes: `<model>-<stage>.yaml` (embedded, qwen1.5b, llama3-8b, llama3-70b)."""
from __future__ import annotations

from pathlib import Path

from buckle.core.shipped import resolve_shipped, shipped_names

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the shipped recipes (usable as `--config NAME`)."""
    return shipped_names([_HERE], ".yaml")


def resolve(name_or_path: str) -> Path:
    """The YAML file of a shipped recipe name, or an existing file path."""
    return resolve_shipped(name_or_path, _HERE, ".yaml", "recipe", " (or give a path to a YAML file)")
