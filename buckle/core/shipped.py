"""Files shipped inside the packages (recipes, DeepSpeed configs, pipelines, profiles, data).

A setting that names one takes a shipped name or a path to an existing file;
an unknown name is an error that lists the names there are.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, Sequence


class NotShipped(FileNotFoundError, ValueError):
    """No shipped file by that name and no such file.

    Both a FileNotFoundError and a ValueError (a bad setting), so callers that
    catch either see it.
    """


def package_folder(package: str, *parts: str) -> Path:
    """The folder of an installed package (or a folder or file below it), e.g. its data.

    Args:
        package: a dotted package name, e.g. "buckle.curation".
        parts: path parts below the package folder.
    """
    return Path(str(resources.files(package))).joinpath(*parts)


def shipped_names(folders: Sequence[Path], suffix: str) -> list[str]:
    """The names (file stems) of the `*suffix` files in the folders, sorted, each once."""
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob(f"*{suffix}")})


def resolve_shipped(name_or_path: str, folders: Path | Sequence[Path], suffix: str, kind: str,
                    hint: str = "", normalize: Callable[[str], str] | None = None) -> Path:
    """The file of a shipped name (first folder that has it wins), or an existing file path.

    Args:
        name_or_path: a shipped name (file stem) or a path.
        folders: where shipped files live, in lookup order (a user folder may shadow a package's).
        suffix: the shipped files' suffix, e.g. ".yaml".
        kind: what the file is, for the error ("recipe", "deepspeed config", ...).
        hint: appended to the error, e.g. " (or give a path to a YAML file)".
        normalize: maps a name to its file stem (e.g. "zero3_offload" -> "zero3-offload").

    Raises:
        NotShipped: neither a shipped name nor a file; the message lists the shipped names.
    """
    folders = [folders] if isinstance(folders, Path) else list(folders)
    stem = normalize(name_or_path) if normalize else name_or_path
    for folder in folders:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    names = shipped_names(folders, suffix)
    raise NotShipped(f"{kind} '{name_or_path}' not found; known: {', '.join(names) or 'none'}{hint}")
