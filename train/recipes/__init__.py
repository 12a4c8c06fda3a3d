"""Shipped training recipes: `<model>-<stage>.yaml` (embedded, llama3-8b, llama3-70b)."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the shipped recipes (usable as `--config NAME`)."""
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """The YAML file of a shipped recipe name, or an existing file path."""
    shipped = _HERE / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f"recipe '{name_or_path}' not found; shipped: {', '.join(names())} "
                            "(or give a path to a YAML file)")
