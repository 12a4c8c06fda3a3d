"""Command-line flags built from a config model's fields: one source for names, types, help and defaults.

`--snake-case` per field; Literal fields give choices; list fields take
comma-separated values; bool fields get `--x/--no-x`. Every flag defaults to
argparse.SUPPRESS, so an absent flag leaves the config file's value (or the
model's default) alone, and `overrides_from` returns only what was given.
"""
from __future__ import annotations

import argparse
import inspect
import types
import typing
from typing import Any, Iterable, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

LONG_LIST = 6  # a longer default list is shown by its length, not spelled out in --help


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel], exclude: Iterable[str] = (),
                    rename: dict[str, str] | None = None) -> list[str]:
    """Add one flag per field of `model`, grouped by the class that declares the field.

    Args:
        parser: the command's parser.
        model: a pydantic model whose field descriptions are the help texts.
        exclude: fields that get no flag (the command sets them another way).
        rename: field -> flag name, for flags whose name differs from the field's.
    Returns:
        The fields that got a flag.
    """
    rename, skip, added = rename or {}, set(exclude), []
    for cls, names in _declared_by(model):
        group = parser.add_argument_group(f"{cls.__name__} (each also a key of --config)",
                                          (inspect.getdoc(cls) or "").split("\n")[0] or None)
        for name in names:
            field = model.model_fields[name]
            kind = _flag_kind(field.annotation)
            if name in skip or kind is None:
                continue
            flag = rename.get(name, "--" + name.replace("_", "-"))
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS, help=_help(field), **kind)
            added.append(name)
    return added


def overrides_from(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model` given as flags (None: not given), with list flags split at commas.

    Raises:
        ConfigError: a list flag holds a value that is not of the list's type.
    """
    from buckle.core.config import ConfigError

    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = getattr(args, name, None)
        if value is None:  # not given (a hand-made flag's default)
            continue
        item = _list_item(field.annotation)
        if item is not None and isinstance(value, str):
            try:
                value = [item(x.strip()) for x in value.split(",") if x.strip()]
            except ValueError:
                noun = "numbers" if item in (int, float) else "values"
                raise ConfigError(f"config error: {name}: expected comma-separated {noun}, "
                                  f"got '{getattr(args, name)}'") from None
        out[name] = value
    return out


def _declared_by(model: type[BaseModel]) -> list[tuple[type, list[str]]]:
    """Fields grouped by the most derived class that declares them, most derived class first."""
    seen: set[str] = set()
    groups = []
    for cls in model.__mro__:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        # the class's own order: a field it overrides is listed where it declares it
        own = [n for n in cls.__dict__.get("__annotations__", {}) if n in model.model_fields and n not in seen]
        seen |= set(own)
        if own:
            groups.append((cls, own))
    return groups


def _unwrap(annotation: Any) -> Any:
    """X from Optional[X]."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _list_item(annotation: Any) -> type | None:
    """The item type of a list field (list[float] -> float), else None."""
    ann = _unwrap(annotation)
    if typing.get_origin(ann) is list:
        args = typing.get_args(ann)
        return args[0] if args and args[0] in (int, float, str) else str
    return None


def _flag_kind(annotation: Any) -> dict[str, Any] | None:
    """argparse keywords (type, choices, metavar, action) for a field type; None if it has no flag."""
    ann = _unwrap(annotation)
    if typing.get_origin(ann) is Literal:
        choices = list(typing.get_args(ann))
        return {"type": type(choices[0]), "choices": choices, "metavar": "{" + ",".join(map(str, choices)) + "}"}
    if _list_item(ann) is not None:
        return {"type": str, "metavar": "X,Y" if _list_item(ann) in (int, float) else "A,B"}
    if ann is bool:
        return {"action": argparse.BooleanOptionalAction}
    metavar = {int: "N", float: "X", str: "TEXT"}.get(ann)
    return {"type": ann, "metavar": metavar} if metavar else None


def _help(field: FieldInfo) -> str:
    """The field's description plus its default (argparse formats help with %, so escape it)."""
    text = field.description or ""
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if default is not None and "default:" not in text:
        if isinstance(default, list):
            shown = ",".join(map(str, default)) if len(default) <= LONG_LIST else f"{len(default)} built-in values"
        else:
            shown = str(default)
        text += f" (default: {shown})"
    return text.replace("%", "%%")
