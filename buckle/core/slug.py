"""A name or path as a safe part of a file or step name: one rule for every package."""
from __future__ import annotations

import re
from pathlib import Path


def slug(name: str) -> str:
    """`advbench-test` as it is; a path by its stem (`data/x.csv` -> `x`); other characters as `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem if "/" in name else name)
