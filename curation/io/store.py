"""The on-disk output layout that every executor writes and train/ and eval/ read.

OUTPUT/
  curated/part-<shard>.parquet   one row per curated record (OUTPUT_COLUMNS + provenance)
  scored/part-<shard>.parquet    `buckle score` rows (SCORE_COLUMNS + provenance)
  quarantine.jsonl               bad input rows, one Quarantine.to_json line each
  .shards/<shard>.json           done markers (curation.io.sink writes them)
  manifest.json                  written by the command (launcher RunDir); a curation's names its
                                 models: scorer (ranks by perplexity), reviser (writes), check

Parts are written to a hidden temp file and renamed, so a reader (or a resumed
run) sees whole parts or none.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from buckle.curation.io.records import OUTPUT_COLUMNS, SCORE_COLUMNS

QUARANTINE_FILE = "quarantine.jsonl"
MARKERS = ".shards"
PROVENANCE = ("node_id", "worker_pid")  # which node and process produced a row
_STR, _F64, _I64, _BOOL = "string", "float64", "int64", "bool_"
_TYPES = {
    "curated": {**{c: _STR for c in OUTPUT_COLUMNS}, "improved": _BOOL, "round": _I64,
                **{c: _F64 for c in OUTPUT_COLUMNS if c.startswith(
                    ("ppl_", "readability_", "helpfulness_", "safety_", "temperature", "top_p"))}},
    "scored": {**{c: _STR for c in SCORE_COLUMNS}, "perplexity": _F64, "tokens": _I64},
}
COLUMNS = {"curated": OUTPUT_COLUMNS, "scored": SCORE_COLUMNS}


def schema(kind: str, provenance: bool = False) -> Any:
    """The pyarrow schema of a part of this kind ("curated" or "scored").

    Args:
        kind: the output kind.
        provenance: add the node_id and worker_pid columns.
    """
    import pyarrow as pa

    if kind not in _TYPES:
        raise ValueError(f"unknown output kind '{kind}'; known: {', '.join(_TYPES)}")
    types = _TYPES[kind]
    fields = [(c, getattr(pa, types[c])()) for c in COLUMNS[kind]]
    if provenance:
        fields += [("node_id", pa.string()), ("worker_pid", pa.int64())]
    return pa.schema(fields)


def part_dir(output_dir: str | Path, kind: str = "curated") -> Path:
    """OUTPUT/<kind>/ (not created)."""
    return Path(output_dir) / kind


def part_files(output_dir: str | Path, kind: str = "curated") -> list[Path]:
    """Finished part files of a kind, sorted by name."""
    folder = part_dir(output_dir, kind)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def write_part(output_dir: str | Path, kind: str, rows: list[dict], name: str,
               provenance: bool = True) -> Path | None:
    """Write rows as one Parquet part atomically (temp file, then rename).

    Args:
        output_dir: the run's output directory.
        kind: "curated" (OUTPUT_COLUMNS) or "scored" (SCORE_COLUMNS); rows must hold every column.
        rows: the rows; nothing is written for an empty list.
        name: file name, "part-*.parquet".
        provenance: also write the node_id and worker_pid columns (None where a row lacks them).

    Returns:
        The part's path, or None when rows is empty.

    Raises:
        FileExistsError: the part exists (a shard is never written twice).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        return None
    if not (name.startswith("part-") and name.endswith(".parquet")):
        raise ValueError(f"part name '{name}' must look like part-*.parquet")
    missing = [c for c in COLUMNS.get(kind, ()) if c not in rows[0]]
    if missing:
        raise ValueError(f"{kind} rows lack columns: {', '.join(missing)}")
    sch = schema(kind, provenance)
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


def read_parts(output_dir: str | Path, kind: str = "curated") -> list[dict]:
    """All rows of all parts of a kind, as dicts (small outputs, tests)."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for path in part_files(output_dir, kind):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


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
