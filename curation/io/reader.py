"""The one reader: a shard of a JSONL/Parquet file or a `datasets` id, validated into records.

Every executor reads input through `read_shard` (shards come from
curation.io.sharding); `columns` is the one place a config's column names
become a Columns mapping. Rows are located as "file:line" (JSONL) or
"file:row N" (tables), so quarantine entries say where a bad row was.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from buckle.curation.io.records import Columns, Quarantine, parse_jsonl_line, validate_row

if TYPE_CHECKING:  # sharding imports this module
    from buckle.curation.io.sharding import Shard

SUFFIXES = (".jsonl", ".json", ".parquet")


def columns(cfg: Any) -> Columns:
    """The input column mapping of a run config (id/instruction/response/input_column)."""
    return Columns(id=cfg.id_column, instruction=cfg.instruction_column,
                   response=cfg.response_column, input=cfg.input_column)


def input_files(source: str) -> list[Path]:
    """The files of a source that is a file or a directory; [] for a dataset id.

    Raises:
        FileNotFoundError: a directory without input files, or a missing file path.
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no .jsonl or .parquet files under '{source}'")
        return files
    if path.is_file():
        return [path]
    if source.endswith(SUFFIXES) or "/" not in source and "." in source:
        raise FileNotFoundError(f"input file '{source}' not found")
    return []


def read_shard(shard: Shard, cols: Columns | None = None) -> list[tuple[str, dict | Quarantine]]:
    """(where, record or Quarantine) for every row of a shard, in order.

    A repeated id inside the shard is quarantined (its first row is kept).
    """
    seen: dict[str, str] = {}
    out = []
    for where, item in _read_rows(shard, cols or Columns()):
        if isinstance(item, dict):
            if item["id"] in seen:
                item = Quarantine(where, f"duplicate id '{item['id']}' (first at {seen[item['id']]})", item)
            else:
                seen[item["id"]] = where
        out.append((where, item))
    return out


def _read_rows(shard: Shard, cols: Columns) -> Iterator[tuple[str, dict | Quarantine]]:
    name = Path(shard.path).name
    if shard.fmt == "jsonl":
        with open(shard.path, "rb") as fh:
            fh.seek(shard.offset)
            for index in range(shard.start, shard.end):
                where = f"{name}:{index + 1}"
                item = parse_jsonl_line(fh.readline(), where, cols)
                if item is not None:
                    yield where, item
        return
    if shard.fmt == "parquet":
        import pyarrow.parquet as pq

        groups, first = _row_groups(shard.path, shard.start, shard.end)
        table = pq.ParquetFile(shard.path).read_row_groups(groups)
        rows = table.slice(shard.start - first, shard.end - shard.start).to_pylist()
    else:
        rows = load_dataset(shard.path).select(range(shard.start, shard.end)).to_list()
        name = shard.path
    for index, row in zip(range(shard.start, shard.end), rows):
        where = f"{name}:row {index}"
        yield where, validate_row(row, where, cols)


def _row_groups(path: str, start: int, end: int) -> tuple[list[int], int]:
    """Row groups of a Parquet file that overlap [start, end), and the first one's first row."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    groups, first, pos = [], None, 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if pos < end and pos + n > start:
            groups.append(g)
            first = pos if first is None else first
        pos += n
    return groups, first or 0


@functools.lru_cache(maxsize=2)
def load_dataset(source: str):
    """The train split of a `datasets` id (downloaded once, memory-mapped; cached per process)."""
    import datasets

    try:
        return datasets.load_dataset(source, split="train")
    except Exception as exc:  # datasets raises many types for a bad id
        raise FileNotFoundError(f"input '{source}' is neither a file nor a loadable dataset: {exc}") from None
