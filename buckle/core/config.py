"""Config loading with one error format: `config error in FILE: key: message`.

Every loader (command configs, training recipes, cluster profiles, pipelines)
reads YAML (JSON is YAML too) and validates with pydantic through here, so a
bad file reads the same wherever it is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound="BaseModel")


class ConfigError(ValueError):
    """A config file or flag is invalid; the message names the file and the key."""


def config_error(path: str | Path | None, key: str | None, message: str) -> ConfigError:
    """A ConfigError reading `config error in FILE: key: message` (file and key when known)."""
    where = f" in {path}" if path else ""
    return ConfigError(f"config error{where}: {key + ': ' if key else ''}{message}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping.

    Raises:
        ConfigError: the file is missing, unreadable, not YAML or not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise config_error(path, None, "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise config_error(path, None, f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise config_error(path, None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise config_error(path, None, "expected a mapping of keys to values")
    return data


def validate(cls: type[T], data: dict[str, Any], path: str | Path | None = None, prefix: str = "") -> T:
    """`cls` built from a mapping; a bad field is a ConfigError naming it.

    Args:
        cls: the pydantic model; it should forbid extra keys.
        data: the values.
        path: the file they came from, for the message.
        prefix: the keys' section in that file, e.g. "stages.post." .
    """
    from pydantic import ValidationError

    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, prefix)) from None


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
    return validate(cls, data, path)


def format_validation_error(exc: "ValidationError", path: str | Path | None = None, prefix: str = "") -> str:
    """One part per bad field: `config error in FILE: key.sub: message; other: message`."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = prefix + loc if loc else (prefix.rstrip(".") or "<root>")
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{key}: {msg}")
    return str(config_error(path, None, "; ".join(parts)))
