"""Applying a step to records, the same in every executor: screen, isolate, quarantine.

A step is any callable taking a list of records and returning one row per
record (CurateStep, ScoreStep). A step with a `screen(record, where)`
(CurateStep's LengthScreen) has records screened first. A batch whose step
raises is rerun record by record, so one bad record (too long, a judge that
fails on it) is quarantined with its error and the others go on.
"""
from __future__ import annotations

from typing import Any, Callable

from buckle.curation.io.records import Quarantine

SUBDIRS = {"score": "scored", "curate": "curated"}  # kind of run -> output folder


def make_step(kind: str, cfg: Any, model_path: str, models: dict[str, str] | None = None) -> Any:
    """Build the step of a kind, "curate" or "score" (imported here, so a worker loads only what it runs).

    `models`: resolved paths of a curation's other roles ({"reviser": ..., "check": ...}; CurateStep).
    """
    if kind == "score":
        from buckle.curation.method.score import ScoreStep

        return ScoreStep(cfg, model_path)
    if kind == "curate":
        from buckle.curation.method.steps import CurateStep

        return CurateStep(cfg, model_path, models)
    raise ValueError(f"unknown kind of run '{kind}'; known: {', '.join(SUBDIRS)}")


def step_batch(cfg: Any, kind: str) -> int:
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
    """A quarantine JSONL line tagged with its shard (so a resume can drop unfinished ones)."""
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
