"""Writing shards exactly once: part files, quarantine lines and done markers.

Per finished shard, in this order: its quarantine lines are appended to
OUTPUT/quarantine.jsonl, its rows go to OUTPUT/<subdir>/part-<key>.parquet
(written to a temp name, then renamed), and OUTPUT/.shards/<key>.json marks it
done (the commit point). A run treats only marked shards as done: before it
starts it drops the quarantine lines and parts of unmarked shards, which are
then redone, so a killed driver or a retried worker never leaves a row twice.
Rows arriving for a shard are keyed by their position in the shard, so a
retried batch overwrites instead of adding.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from buckle.curation.io.store import MARKERS, QUARANTINE_FILE, part_files, write_part

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


def drop_unfinished(output_dir: str | Path, subdir: str, done: set[str]) -> int:
    """Remove what shards without a done marker left behind; returns how many lines and parts.

    Raises:
        ValueError: a part not named after a shard (not written by this protocol),
            whose rows a rerun could not account for.
    """
    for path in part_files(output_dir, subdir):
        if not _KEY.match(path.stem[len("part-"):]):
            raise ValueError(f"'{path}' was not written shard by shard (an output of an older "
                             "buckle?); write to a new output directory")
    stale = [p for p in part_files(output_dir, subdir) if p.stem[len("part-"):] not in done]
    for path in stale:
        path.unlink()
    return len(stale) + _drop_quarantine(Path(output_dir) / QUARANTINE_FILE, done)


def _drop_quarantine(path: Path, done: set[str]) -> int:
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


class ShardSink:
    """Collects a shard's entries and commits the shard once all have arrived.

    Parts use the output schema of curation.io.store with provenance columns
    (node_id, worker_pid: which node and process produced the row).

    Args:
        output_dir: the run's output directory.
        subdir: "scored" or "curated" (the store kind).
        progress: a curation.executors.progress.Progress to tick per entry (None: the
            caller counts progress itself).
    """

    def __init__(self, output_dir: str | Path, subdir: str, progress: Any = None):
        self.out, self.kind = Path(output_dir), subdir
        (self.out / subdir).mkdir(parents=True, exist_ok=True)
        (self.out / MARKERS).mkdir(exist_ok=True)
        self.progress = progress
        self.pending: dict[str, tuple[int, dict[int, tuple[str, Any]]]] = {}
        self.committed: set[str] = set()
        self.counts = {"rows": 0, "quarantined": 0, "shards_computed": 0}
        self.by_node: dict[str, int] = {}

    def add(self, key: str, n: int, seq: int, kind: str, payload: Any) -> None:
        """One entry of a shard: kind "ok" (a row dict), "bad" (a quarantine JSON
        line) or "empty" (a shard without rows). An entry arriving twice (a
        retried batch) replaces the first; one arriving after its shard was
        committed is dropped."""
        if key in self.committed:
            return
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
        if bad:
            with open(self.out / QUARANTINE_FILE, "a", encoding="utf-8") as fh:
                fh.write("".join(line.rstrip("\n") + "\n" for line in bad))
        write_part(self.out, self.kind, rows, f"part-{key}.parquet")
        marker = self.out / MARKERS / f"{key}.json"
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": len(rows), "quarantined": len(bad)}))
        tmp.replace(marker)
        self.committed.add(key)
        for name, value in (("rows", len(rows)), ("quarantined", len(bad)), ("shards_computed", 1)):
            self.counts[name] += value
        for row in rows:
            node = row.get("node_id")
            if node:
                self.by_node[node] = self.by_node.get(node, 0) + 1

    def unfinished(self) -> list[str]:
        """Keys of shards that received entries but not all of them."""
        return sorted(self.pending)
