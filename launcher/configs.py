"""Typed configs from YAML with CLI overrides on top; errors name the file and the key.

Loading lives in buckle.core.config (one error format for every package);
this module keeps the launcher's names for it and the flag parsers.
"""
from __future__ import annotations

from buckle.core.config import ConfigError, format_validation_error, load_config, read_yaml, validate

__all__ = ["ConfigError", "format_validation_error", "load_config", "parse_floats", "read_yaml", "validate"]


def parse_floats(text: str | None) -> list[float] | None:
    """Parse a comma-separated float list flag like '0.2,0.4'."""
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got '{text}'") from None
