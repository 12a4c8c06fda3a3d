"""Writing shards exactly once: part files, quarantine lines and done markers.

Per finished shard, in this order: its quarantine lines are appended to
OUTPUT/quarantine.jsonl, its rows go to OUTPUT/<subdir>/part-<key>.parquet
(written to a temp name, then renamed), and OUTPUT/.shards/<key>.json marks it
done (the commit point). A rerun treats only marked shards as done, drops
quarantine lines of unmarked shards, and rewrites their part under the same
name, so a killed driver or a retried worker never leaves a row twice.
Rows arriving for a shard are keyed by their position in the shard, so a
retried batch overwrites instead of adding.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

MARKERS = ".shards"
QUARANTINE = "quarantine.jsonl"
_KEY = re.compile(r"^[0-9a-f]{8}-\d{10}-\d{10}$")  # shard keys (curation.io.sharding.Shard.key)


def done_shards(output_dir: str | Path) -> dict[str, dict]:
    """Keys of the shards finished in an output directory, with their counts."""
    folder = Path(output_dir) / MARKERS
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a torn marker means the shard is not done
    return out


def drop_unfinished_quarantine(output_dir: str | Path, done: set[str]) -> int:
    """Remove quarantine lines of shards not marked done; returns how many were dropped."""
    path = Path(output_dir) / QUARANTINE
    if not path.exists():
        return 0
    keep, dropped = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                shard = json.loads(line).get("shard")
            except ValueError:
                shard = None
            if shard is not None and shard not in done:
                dropped += 1
            else:
                keep.append(line)
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        tmp.replace(path)
    return dropped


def foreign_done_ids(output_dir: str | Path, subdir: str, done: set[str]) -> set[str]:
    """Ids in parts that no shard marker covers: written by the other executor (skip them).

    Parts named after a shard key without a marker are leftovers of an
    unfinished commit: they are removed (the shard is redone under that name).
    """
    import pyarrow.parquet as pq

    ids: set[str] = set()
    folder = Path(output_dir) / subdir
    for path in sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []:
        key = path.stem[len("part-"):]
        if key in done:
            continue
        if _KEY.match(key):
            path.unlink()
            continue
        ids.update(str(x) for x in pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return ids


class ShardSink:
    """Collects a shard's entries and commits the shard once all have arrived.

    Parts use the output schema of curation.io.store plus provenance columns
    (node_id, worker_pid: which node and process produced the row).

    Args:
        output_dir: the run's output directory.
        subdir: "scored" or "curated" (the store kind).
        progress: a curation.executors.shard_progress.Progress to tick, or None.
    """

    def __init__(self, output_dir: str | Path, subdir: str, progress: Any = None):
        self.out, self.kind = Path(output_dir), subdir
        (self.out / subdir).mkdir(parents=True, exist_ok=True)
        (self.out / MARKERS).mkdir(exist_ok=True)
        self.progress = progress
        self.pending: dict[str, tuple[int, dict[int, tuple[str, Any]]]] = {}
        self.counts = {"rows": 0, "quarantined": 0, "skipped": 0, "shards_computed": 0}
        self.by_node: dict[str, int] = {}

    def add(self, key: str, n: int, seq: int, kind: str, payload: Any) -> None:
        """One entry of a shard: kind "ok" (a row dict), "bad" (a quarantine JSON
        line), "skip" (written before) or "empty" (a shard without rows).
        An entry arriving twice (a retried batch) replaces the first."""
        total, entries = self.pending.setdefault(key, (n, {}))
        if seq not in entries and self.progress and kind != "empty":
            self.progress.tick(1)
        entries[seq] = (kind, payload)
        if len(entries) >= total:
            self.commit(key, [entries[i] for i in sorted(entries)])
            del self.pending[key]

    def commit(self, key: str, entries: list[tuple[str, Any]]) -> None:
        """Write one finished shard (quarantine, then part, then marker)."""
        rows = [p for k, p in entries if k == "ok"]
        bad = [p for k, p in entries if k == "bad"]
        skipped = sum(1 for k, _ in entries if k == "skip")
        if bad:
            with open(self.out / QUARANTINE, "a", encoding="utf-8") as fh:
                fh.write("".join(line.rstrip("\n") + "\n" for line in bad))
        if rows:
            self._write_part(key, rows)
        marker = self.out / MARKERS / f"{key}.json"
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": len(rows), "quarantined": len(bad), "skipped": skipped}))
        tmp.replace(marker)
        for name, value in (("rows", len(rows)), ("quarantined", len(bad)), ("skipped", skipped),
                            ("shards_computed", 1)):
            self.counts[name] += value
        for row in rows:
            node = row.get("node_id")
            if node:
                self.by_node[node] = self.by_node.get(node, 0) + 1

    def _write_part(self, key: str, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from buckle.curation.io.store import schema

        sch = schema(self.kind).append(pa.field("node_id", pa.string())).append(
            pa.field("worker_pid", pa.int64()))
        table = pa.Table.from_pylist([{c: r.get(c) for c in sch.names} for r in rows], schema=sch)
        path = self.out / self.kind / f"part-{key}.parquet"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    def unfinished(self) -> list[str]:
        """Keys of shards that received entries but not all of them."""
        return sorted(self.pending)
