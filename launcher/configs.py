"""Typed configs from YAML with CLI overrides on top; errors name the key."""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the key."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping is a ConfigError."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of keys to values")
    return data


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: dict[str, Any] | None = None, section: str | None = None) -> T:
    """Build a config: YAML values (optionally one section of the file), then overrides.

    Args:
        cls: the pydantic model; it should forbid extra keys.
        path: YAML file or None.
        overrides: values from CLI flags; None values are ignored.
        section: if given and present in the file, use that sub-mapping.
    """
    data: dict[str, Any] = read_yaml(path) if path else {}
    if section and isinstance(data.get(section), dict):
        data = data[section]
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None


def format_validation_error(exc: ValidationError, path: str | Path | None = None) -> str:
    """One line per bad field: `config error in FILE: key.sub: message`."""
    where = f" in {path}" if path else ""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{key}: {msg}")
    return f"config error{where}: " + "; ".join(parts)


def parse_floats(text: str | None) -> list[float] | None:
    """Parse a comma-separated float list flag like '0.2,0.4'."""
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got '{text}'") from None
