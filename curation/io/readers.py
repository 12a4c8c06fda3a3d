"""Readers: JSONL, Parquet, or a `datasets` id/path, yielding records or quarantine entries."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from buckle.curation.io.records import Columns, Quarantine, parse_jsonl_line, validate_row


def read_records(source: str, cols: Columns | None = None,
                 limit: int | None = None) -> Iterator[dict | Quarantine]:
    """Yield records (dicts) and Quarantine entries, in input order.

    Args:
        source: a .jsonl/.json file, a .parquet file, a directory of those, or a
            `datasets` id/path (train split).
        cols: column mapping.
        limit: stop after this many rows read (good or bad).
    """
    for _, item in read_located(source, cols, limit):
        yield item


def read_located(source: str, cols: Columns | None = None,
                 limit: int | None = None) -> Iterator[tuple[str, dict | Quarantine]]:
    """Like `read_records`, but each item comes with where it was read ("file:line", "file:row N")."""
    count = 0
    for item in _iter_source(source, cols or Columns()):
        if limit is not None and count >= limit:
            return
        count += 1
        yield item


def input_files(source: str) -> list[Path]:
    """The files of a source that is a file or a directory; [] for a dataset id."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".json", ".parquet"))
        if not files:
            raise FileNotFoundError(f"no .jsonl or .parquet files under '{source}'")
        return files
    if path.is_file():
        return [path]
    return []


def _iter_source(source: str, cols: Columns) -> Iterator[tuple[str, dict | Quarantine]]:
    files = input_files(source)
    if not files:
        yield from _read_dataset(source, cols)
        return
    for path in files:
        if path.suffix == ".parquet":
            yield from _read_parquet(path, cols)
        else:
            yield from _read_jsonl(path, cols)


def _read_jsonl(path: Path, cols: Columns) -> Iterator[tuple[str, dict | Quarantine]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path.name}:{lineno}"
            item = parse_jsonl_line(raw, where, cols)
            if item is not None:
                yield where, item


def _read_parquet(path: Path, cols: Columns) -> Iterator[tuple[str, dict | Quarantine]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    rownum = 0
    for batch in pf.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            where = f"{path.name}:row {rownum}"
            yield where, validate_row(row, where, cols)
            rownum += 1


def _read_dataset(source: str, cols: Columns) -> Iterator[tuple[str, dict | Quarantine]]:
    if source.endswith((".jsonl", ".json", ".parquet")) or "/" not in source and "." in source:
        raise FileNotFoundError(f"input file '{source}' not found")
    import datasets

    try:
        ds = datasets.load_dataset(source, split="train", streaming=True)
    except Exception as exc:  # datasets raises many types for a bad id
        raise FileNotFoundError(f"input '{source}' is neither a file nor a loadable dataset: {exc}") from None
    for rownum, row in enumerate(ds):
        where = f"{source}:row {rownum}"
        yield where, validate_row(row, where, cols)
