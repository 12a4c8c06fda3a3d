"""What both executors share: starting a run, applying a step to a chunk, the counts.

`run_local` is the in-process executor over shards; curation.executors.ray_executor
runs the same pieces on a Ray cluster. A step is any callable taking a list
of records and returning one row per record (ScoreStep, CurateStep); a step
with a `screen(record, where)` (CurateStep's LengthScreen) has records
screened first, as the local curate executor does.
"""
from __future__ import annotations

import os
import resource
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from buckle.curation.config import CurateConfig
from buckle.curation.io.records import Columns, Quarantine
from buckle.curation.executors.shard_progress import Progress
from buckle.curation.io.shard_sink import ShardSink, done_shards, drop_unfinished_quarantine, foreign_done_ids
from buckle.curation.io.shard_reader import read_shard
from buckle.curation.io.sharding import Plan, plan_shards

SUBDIRS = {"score": "scored", "curate": "curated"}


@dataclass
class Run:
    """One run into an output directory: what is left to do and where it goes."""

    kind: str
    output_dir: str
    plan: Plan
    sink: ShardSink
    progress: Progress
    before: dict  # rows/quarantined/skipped already in the output when the run started
    skip_ids: frozenset  # ids written by another executor's parts (skipped, not redone)
    t0: float


def columns_of(cfg: CurateConfig) -> Columns:
    """Input column mapping from the config."""
    return Columns(id=cfg.id_column, instruction=cfg.instruction_column,
                   response=cfg.response_column, input=cfg.input_column)


def step_batch(cfg: CurateConfig, kind: str) -> int:
    """Records per step call: scoring is cheap per record, so it takes bigger batches."""
    return cfg.batch_size * 8 if kind == "score" else cfg.batch_size


def isolate(step: Callable[[list[dict]], list[dict]], records: list[dict]) -> list[Any]:
    """Run a step on a batch; if it raises, rerun each record alone.

    Returns one entry per record: its output row, or the exception it raised.
    """
    try:
        rows = step(records)
        if len(rows) != len(records):
            raise RuntimeError(f"step returned {len(rows)} rows for {len(records)} records")
        return rows
    except Exception as exc:  # a bad record must not fail the batch
        if len(records) == 1:
            return [exc]
        return [one for rec in records for one in isolate(step, [rec])]


def quarantine_line(key: str, where: str, item: Quarantine | dict, exc: Exception | None = None) -> str:
    """A quarantine JSONL line tagged with its shard (so resume can drop unfinished ones)."""
    if isinstance(item, Quarantine):
        item.extra["shard"] = key
        return item.to_json()
    reason = f"step failed: {type(exc).__name__}: {exc}"
    return Quarantine(where, reason, item, {"shard": key, "id": item.get("id")}).to_json()


def process(step: Any, chunk: list[tuple[str, str, Any]], provenance: dict) -> list[tuple[str, Any]]:
    """Sink entries for (shard key, where, record or Quarantine) triples.

    Returns ("ok", row with provenance) or ("bad", quarantine line) per triple.
    """
    screen = getattr(step, "screen", None)
    items = [_screen(screen, it, where) if screen and isinstance(it, dict) else it
             for _, where, it in chunk]
    records = [it for it in items if isinstance(it, dict)]
    results = iter(isolate(step, records) if records else [])
    out: list[tuple[str, Any]] = []
    for (key, where, raw), item in zip(chunk, items):
        res = item if isinstance(item, Quarantine) else next(results)
        if isinstance(res, dict):
            out.append(("ok", {**res, **provenance}))
        else:
            exc = res if isinstance(res, Exception) else None
            out.append(("bad", quarantine_line(key, where, item if exc is None else raw, exc)))
    return out


def _screen(screen: Callable, record: dict, where: str) -> dict | Quarantine:
    try:
        return screen(record, where)
    except Exception as exc:  # a record the screen chokes on is bad input too
        return Quarantine(where, f"screen failed: {type(exc).__name__}: {exc}", record)


def start(cfg: CurateConfig, source: str, output_dir: str, kind: str, label: str) -> Run:
    """Plan the shards still to do, drop stale quarantine lines, open the sink."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    done = done_shards(output_dir)
    plan = plan_shards(source, cfg.shard_size, cfg.limit, done)
    drop_unfinished_quarantine(output_dir, set(done))
    progress = Progress(label, plan.skipped_rows + plan.todo_rows, already=plan.skipped_rows)
    sink = ShardSink(output_dir, SUBDIRS[kind], progress)
    before = {k: sum(d.get(k, 0) for d in done.values()) for k in ("rows", "quarantined", "skipped")}
    skip = frozenset(foreign_done_ids(output_dir, SUBDIRS[kind], set(done)))
    return Run(kind, output_dir, plan, sink, progress, before, skip, t0)


def finish(run: Run, **extra: Any) -> dict:
    """Counts over the whole output (read = rows + quarantined) and this run's share."""
    run.progress.show()
    new = run.sink.counts
    word = SUBDIRS[run.kind]
    processed = new["rows"] + new["quarantined"] + new["skipped"]
    prev = run.before["rows"] + run.before["skipped"]
    wall = time.time() - run.t0
    return {
        "read": prev + run.before["quarantined"] + processed,
        word: prev + new["rows"] + new["skipped"], "quarantined": run.before["quarantined"] + new["quarantined"],
        f"{word}_new": new["rows"], "quarantined_new": new["quarantined"],
        "skipped_existing": prev + new["skipped"],
        "shards_computed": new["shards_computed"], "shards_skipped": run.plan.skipped_shards,
        "rows_skipped": run.plan.skipped_rows, "shards_unfinished": len(run.sink.unfinished()),
        "rows_per_s": round(processed / max(wall, 1e-9), 2),
        "steady_rows_per_s": round(run.progress.rate, 2), "wall_s": round(wall, 3),
        "driver_peak_rss_mb": peak_rss_mb(), **extra,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def shard_items(run: Run, shard: Any, cols: Columns) -> list[tuple[str, Any]]:
    """A shard's (where, item) list; ids another executor already wrote become "skip"."""
    items = read_shard(shard, cols)
    if not run.skip_ids:
        return items
    return [(w, "skip" if isinstance(it, dict) and it["id"] in run.skip_ids else it) for w, it in items]


def run_local(cfg: CurateConfig, source: str, output_dir: str, kind: str,
              make_step: Callable[[], Any]) -> dict:
    """Run a step over all shards in this process (the local executor).

    Args:
        cfg: run config (shard_size, limit, batch_size, column mapping).
        source: input file, directory or dataset id.
        output_dir: output directory; rerunning resumes.
        kind: "score" or "curate" (decides the output folder and schema).
        make_step: builds the step (called once, only if there is work).
    """
    run = start(cfg, source, output_dir, kind, kind)
    step, cols, size = None, columns_of(cfg), step_batch(cfg, kind)
    prov = {"node_id": socket.gethostname(), "worker_pid": os.getpid()}
    for shard in run.plan.shards:
        items = shard_items(run, shard, cols)
        step = step or make_step()
        entries: list[tuple[str, Any]] = []
        for lo in range(0, len(items), size):
            chunk = items[lo:lo + size]
            todo = [(shard.key, w, it) for w, it in chunk if it != "skip"]
            done = iter(process(step, todo, prov))
            entries += [("skip", None) if it == "skip" else next(done) for _, it in chunk]
        run.sink.commit(shard.key, entries)
        run.progress.tick(len(items))
    return finish(run, executor="local", workers=1)
