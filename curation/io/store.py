"""On-disk output layout shared by the local and the Ray executor.

OUTPUT/
  curated/part-*.parquet   one row per curated record (OUTPUT_COLUMNS)
  scored/part-*.parquet    `buckle score` rows (SCORE_COLUMNS)
  quarantine.jsonl         bad input rows, one Quarantine.to_json line each
  manifest.json            written by the command (launcher RunDir)

Parts are written to a hidden temp file and renamed, so a reader (or a resumed
run) sees whole parts or none. Resume is per id: `done_ids` lists what is
already written and executors skip those ids, so a rerun never writes a
record twice.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from buckle.curation.io.records import OUTPUT_COLUMNS, SCORE_COLUMNS, Quarantine

QUARANTINE_FILE = "quarantine.jsonl"
_STR, _F64, _I64, _BOOL = "string", "float64", "int64", "bool_"
_TYPES = {
    "curated": {**{c: _STR for c in OUTPUT_COLUMNS}, "improved": _BOOL, "round": _I64,
                **{c: _F64 for c in OUTPUT_COLUMNS if c.startswith(
                    ("ppl_", "readability_", "helpfulness_", "safety_", "temperature", "top_p"))}},
    "scored": {**{c: _STR for c in SCORE_COLUMNS}, "perplexity": _F64, "tokens": _I64},
}
COLUMNS = {"curated": OUTPUT_COLUMNS, "scored": SCORE_COLUMNS}


def schema(kind: str) -> Any:
    """The pyarrow schema of a part of this kind ("curated" or "scored")."""
    import pyarrow as pa

    if kind not in _TYPES:
        raise ValueError(f"unknown output kind '{kind}'; known: {', '.join(_TYPES)}")
    types = _TYPES[kind]
    return pa.schema([(c, getattr(pa, types[c])()) for c in COLUMNS[kind]])


def part_dir(output_dir: str | Path, kind: str = "curated") -> Path:
    """OUTPUT/<kind>/ (not created)."""
    return Path(output_dir) / kind


def part_files(output_dir: str | Path, kind: str = "curated") -> list[Path]:
    """Finished part files of a kind, sorted by name."""
    folder = part_dir(output_dir, kind)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def new_part_name(prefix: str = "") -> str:
    """A part file name unique across runs and workers: part-<prefix><time>-<random>.parquet."""
    return f"part-{prefix}{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"


def write_part(output_dir: str | Path, kind: str, rows: list[dict], part_name: str | None = None) -> Path | None:
    """Write rows as one Parquet part atomically (temp file, then rename).

    Args:
        output_dir: the run's output directory.
        kind: "curated" (OUTPUT_COLUMNS) or "scored" (SCORE_COLUMNS); rows must hold every column.
        rows: the rows; nothing is written for an empty list.
        part_name: file name, "part-*.parquet"; default: `new_part_name()`.

    Returns:
        The part's path, or None when rows is empty.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return None
    name = part_name or new_part_name()
    if not (name.startswith("part-") and name.endswith(".parquet")):
        raise ValueError(f"part name '{name}' must look like part-*.parquet")
    sch = schema(kind)
    missing = [c for c in sch.names if c not in rows[0]]
    if missing:
        raise ValueError(f"{kind} rows lack columns: {', '.join(missing)}")
    table = pa.Table.from_pylist([{c: r.get(c) for c in sch.names} for r in rows], schema=sch)
    folder = part_dir(output_dir, kind)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    if final.exists():
        raise FileExistsError(f"part '{final}' already exists")
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    tmp.replace(final)
    return final


def done_ids(output_dir: str | Path, kind: str = "curated") -> set[str]:
    """Ids already written under OUTPUT/<kind>/ (for resume)."""
    import pyarrow.parquet as pq

    ids: set[str] = set()
    for path in part_files(output_dir, kind):
        ids.update(str(x) for x in pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return ids


def read_parts(output_dir: str | Path, kind: str = "curated") -> list[dict]:
    """All rows of all parts of a kind, as dicts (small outputs, tests, summaries)."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for path in part_files(output_dir, kind):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def append_quarantine(output_dir: str | Path, entries: Iterable[Quarantine | dict],
                      seen: set[str] | None = None) -> int:
    """Append entries to OUTPUT/quarantine.jsonl; returns how many were written.

    Entries whose `where` is already in the file are skipped, so a resumed run
    does not list the same bad row twice.

    Args:
        output_dir: the run's output directory.
        entries: Quarantine entries (or dicts with a "where").
        seen: `quarantined_wheres(output_dir)`, kept by a caller that appends
            often (updated in place); read from the file when None.
    """
    path = Path(output_dir) / QUARANTINE_FILE
    seen = quarantined_wheres(output_dir) if seen is None else seen
    lines = []
    for entry in entries:
        line = entry.to_json() if isinstance(entry, Quarantine) else json.dumps(entry, default=str)
        where = json.loads(line).get("where")
        if where in seen:
            continue
        seen.add(where)
        lines.append(line + "\n")
    if lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))
    return len(lines)


def quarantined_wheres(output_dir: str | Path) -> set[str]:
    """The `where` of every entry in OUTPUT/quarantine.jsonl."""
    return {e.get("where") for e in read_quarantine(output_dir)}


def read_quarantine(output_dir: str | Path) -> list[dict]:
    """Entries of OUTPUT/quarantine.jsonl (a torn last line from a crash is ignored)."""
    path = Path(output_dir) / QUARANTINE_FILE
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
