"""Shards: contiguous line/row ranges of input files, the unit of work, output and resume.

A shard is named by its file id and range, e.g. `3fa1c09e-0000000064-0000000128`
(lines 64..127 of one file). Finished ranges are read back from the output
(see curation.io.sink) and the planner cuts new shards only from the gaps
between them, so a rerun never recomputes or duplicates a finished range,
even with another shard size or limit. Planning streams over the input once
and keeps only shard boundaries (memory grows with shards, not rows).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from buckle.curation.io.reader import input_files, load_dataset


@dataclass(frozen=True)
class Shard:
    """One range of one input: lines [start, end) of a JSONL file, or rows of a table."""

    fid: str
    path: str
    fmt: str  # "jsonl" | "parquet" | "dataset"
    start: int
    end: int
    offset: int  # byte offset of line `start` (jsonl only)
    rows: int  # non-blank lines / rows in the range (planned; for progress)

    @property
    def key(self) -> str:
        """Stable name of the shard, used for output part and marker files."""
        return f"{self.fid}-{self.start:010d}-{self.end:010d}"


@dataclass
class Plan:
    """Shards still to do, and what earlier runs already finished."""

    shards: list[Shard]
    skipped_rows: int
    skipped_shards: int

    @property
    def todo_rows(self) -> int:
        """Rows the shards still to do hold."""
        return sum(s.rows for s in self.shards)


def parse_key(key: str) -> tuple[str, int, int]:
    """(fid, start, end) of a shard key."""
    fid, start, end = key.rsplit("-", 2)
    return fid, int(start), int(end)


def file_id(name: str) -> str:
    """Short stable id of an input file (by its path relative to the source)."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]


def input_units(source: str) -> list[tuple[str, str, str]]:
    """(fid, path, format) of every input file of a source, or of the dataset id."""
    files = input_files(source)
    if not files:
        return [(file_id(source), source, "dataset")]
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    return [(file_id(str(p.relative_to(root))), str(p.resolve()),
             "parquet" if p.suffix == ".parquet" else "jsonl") for p in files]


def plan_shards(source: str, shard_size: int, limit: int | None = None,
                done: Iterable[str] = ()) -> Plan:
    """Cut the input into shards of `shard_size` rows, skipping finished ranges.

    Args:
        source: file, directory or dataset id (see curation.io.reader.input_files).
        shard_size: rows (non-blank lines) per shard.
        limit: use only the first `limit` rows of the input (finished ones count).
        done: keys of shards already written.
    """
    finished: dict[str, list[tuple[int, int]]] = {}
    for key in done:
        fid, start, end = parse_key(key)
        finished.setdefault(fid, []).append((start, end))
    shards: list[Shard] = []
    skipped_rows = skipped_shards = 0
    budget = limit
    for fid, path, fmt in input_units(source):
        if budget is not None and budget <= 0:
            break
        ranges = sorted(finished.get(fid, []))
        skipped_shards += len(ranges)
        cut = _Cutter(fid, path, fmt, shard_size, ranges, budget)
        cut.run(_row_events(path, fmt))
        shards += cut.shards
        skipped_rows += cut.skipped
        if budget is not None:
            budget -= cut.used
    return Plan(shards, skipped_rows, skipped_shards)


class _Cutter:
    """Walks (index, offset, blank) events of one input and cuts shards from the gaps."""

    def __init__(self, fid, path, fmt, size, ranges, budget):
        self.fid, self.path, self.fmt, self.size = fid, path, fmt, size
        self.ranges, self.budget = ranges, budget
        self.shards: list[Shard] = []
        self.skipped = self.used = 0
        self._open: tuple[int, int] | None = None  # (start, offset) of the shard being cut
        self._rows = 0

    def run(self, events: Iterator[tuple[int, int, bool]]) -> None:
        k, last = 0, -1
        for index, offset, blank in events:
            last = index
            while k < len(self.ranges) and self.ranges[k][1] <= index:
                k += 1
            in_done = k < len(self.ranges) and self.ranges[k][0] <= index
            if in_done or blank:
                if in_done:
                    self._close(index)
                if not blank:
                    if self.budget is not None and self.used >= self.budget:
                        break
                    self.used += 1
                    self.skipped += 1
                continue
            if self.budget is not None and self.used >= self.budget:
                break
            if self._open is None:
                self._open, self._rows = (index, offset), 0
            self._rows += 1
            self.used += 1
            if self._rows == self.size:
                self._close(index + 1)
        else:
            self._close(last + 1)
            return
        self._close(index)

    def _close(self, end: int) -> None:
        if self._open is not None and self._rows:
            start, offset = self._open
            self.shards.append(Shard(self.fid, self.path, self.fmt, start, end, offset, self._rows))
        self._open, self._rows = None, 0


def _row_events(path: str, fmt: str) -> Iterator[tuple[int, int, bool]]:
    if fmt == "jsonl":
        offset = 0
        with open(path, "rb") as fh:
            for index, raw in enumerate(fh):
                yield index, offset, not raw.strip()
                offset += len(raw)
        return
    for index in range(_table_rows(path, fmt)):
        yield index, 0, False


def _table_rows(path: str, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return len(load_dataset(path))
