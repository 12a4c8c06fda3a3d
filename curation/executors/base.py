"""The one executor protocol, and `run`, the entry point of every curation or scoring run.

A run plans shards of the input (skipping those with a done marker), reads
each shard, applies the step to its records with per-record isolation and
quarantine (curation.executors.apply), and hands the results to the sink,
which writes the shard's part, quarantine lines and marker exactly once
(curation.io.sink). Executors differ only in where the step runs: in this
process (`LocalExecutor`) or on a Ray actor pool (`RayExecutor`); planning,
resume, the sink and the summary are this module's, shared by both.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buckle.curation.executors.apply import SUBDIRS
from buckle.curation.executors.progress import Progress, quiet
from buckle.curation.io.reader import columns
from buckle.curation.io.records import Columns
from buckle.curation.io.sharding import Plan, plan_shards
from buckle.curation.io.sink import ShardSink, done_shards, drop_unfinished
from buckle.curation.io.summary import output_stats

if TYPE_CHECKING:
    from buckle.curation.config import CorpusRunConfig


def run(cfg: CorpusRunConfig, source: str, output_dir: str, kind: str, model_path: str,
        progress: bool = True, models: dict[str, str] | None = None) -> dict[str, Any]:
    """Curate or score every input record with the executor the config names.

    Rerunning into the same output resumes: finished shards are kept, never
    recomputed or written twice. Bad rows, and records whose step raised, go to
    OUTPUT/quarantine.jsonl; the model loads only if there is work.

    Args:
        cfg: the run's config (CurateConfig or ScoreConfig): executor, shard_size,
            limit, batch_size, column mapping, and for Ray ray_address, num_workers,
            cpus_per_worker.
        source: JSONL/Parquet file, directory of those, or a `datasets` id.
        output_dir: where OUTPUT/curated/ (or scored/) and quarantine.jsonl go (created).
        kind: "curate" or "score".
        model_path: what `from_pretrained` loads (on every node, for Ray); for curation, the scorer.
        progress: show progress on stderr (a bar locally, a line every 5 s on Ray).
        models: curation's other roles, resolved like model_path: {"reviser": path, "check": path}
            (a role missing here and named in cfg is resolved by each step; CurateStep).

    Returns:
        read, curated (or scored), quarantined, skipped_existing (rows of earlier
        runs), <kind>_new, quarantined_new, shard counts, rows/s, peak memory,
        executor, workers, the output's summary (curate: texts, improved,
        acceptance_rate, mean_ppl_before/after; score: mean_perplexity) and
        timings (seconds).

    Raises:
        RuntimeError: shards were left unfinished (the finished ones are kept; rerun).
    """
    if kind not in SUBDIRS:
        raise ValueError(f"unknown kind of run '{kind}'; known: {', '.join(SUBDIRS)}")
    if cfg.executor == "ray":
        from buckle.curation.executors.ray_executor import RayExecutor as cls
    elif cfg.executor == "local":
        from buckle.curation.executors.local import LocalExecutor as cls
    else:
        raise ValueError(f"executor: unknown '{cfg.executor}' (local, ray)")
    return cls(cfg, kind, model_path, progress, models).run(source, output_dir)


@dataclass
class Job:
    """One run into an output directory: the shards left to do and where their results go."""

    kind: str
    output_dir: str
    cols: Columns
    plan: Plan
    sink: ShardSink
    progress: Progress
    before: dict  # rows and quarantined lines already in the output when the run started
    t0: float  # time.time() at the start


class Executor:
    """Runs a step over the shards of an input; a subclass says where the step runs.

    Args:
        cfg: the run's config.
        kind: "curate" or "score".
        model_path: what `from_pretrained` loads.
        progress: show progress on stderr.
        models: other roles' paths, passed to the step (make_step).
    """

    name = "base"
    workers = 1  # processes running the step

    def __init__(self, cfg: CorpusRunConfig, kind: str, model_path: str, progress: bool = True,
                 models: dict[str, str] | None = None):
        self.cfg, self.kind, self.model_path, self.show_progress = cfg, kind, model_path, progress
        self.models = dict(models or {})

    def run(self, source: str, output_dir: str) -> dict[str, Any]:
        """Plan, execute the shards left, and summarize the whole output."""
        job = self.start(source, output_dir)
        try:
            extra = self.execute(job) if job.plan.shards else {}
        finally:
            job.progress.close()
        counts = self.finish(job, extra)
        if counts["shards_unfinished"]:
            raise RuntimeError(f"{counts['shards_unfinished']} shards did not finish; rerun to resume")
        return counts

    def execute(self, job: Job) -> dict[str, Any]:
        """Run the step on every shard of `job.plan`, feeding `job.sink`; returns extra counts."""
        raise NotImplementedError

    def make_progress(self, total: int, already: int) -> Progress:
        """Progress lines every few seconds (an executor with a terminal may draw a bar)."""
        label = f"{self.kind} ({self.name})"
        return Progress(label, total, already) if self.show_progress else quiet(label, total, already)

    def start(self, source: str, output_dir: str) -> Job:
        """Plan the shards still to do, drop what unfinished shards left, open the sink."""
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        done = done_shards(output_dir)
        drop_unfinished(output_dir, SUBDIRS[self.kind], set(done))
        plan = plan_shards(source, self.cfg.shard_size, self.cfg.limit, done)
        progress = self.make_progress(plan.skipped_rows + plan.todo_rows, plan.skipped_rows)
        sink = ShardSink(output_dir, SUBDIRS[self.kind], progress)
        before = {k: sum(d.get(k, 0) for d in done.values()) for k in ("rows", "quarantined")}
        return Job(self.kind, output_dir, columns(self.cfg), plan, sink, progress, before, t0)

    def finish(self, job: Job, extra: dict[str, Any]) -> dict[str, Any]:
        """Counts over the whole output (read = rows + quarantined), this run's share, the summary."""
        new, word = job.sink.counts, SUBDIRS[job.kind]
        processed = new["rows"] + new["quarantined"]
        wall = time.time() - job.t0
        timings = {**extra.pop("timings", {}), "total_s": round(wall, 3)}
        return {
            "read": job.before["rows"] + job.before["quarantined"] + processed,
            word: job.before["rows"] + new["rows"], "quarantined": job.before["quarantined"] + new["quarantined"],
            f"{word}_new": new["rows"], "quarantined_new": new["quarantined"],
            "skipped_existing": job.before["rows"],
            "shards_computed": new["shards_computed"], "shards_skipped": job.plan.skipped_shards,
            "rows_skipped": job.plan.skipped_rows, "shards_unfinished": len(job.sink.unfinished()),
            "rows_per_s": round(processed / max(wall, 1e-9), 2),
            "steady_rows_per_s": round(job.progress.rate, 2), "wall_s": round(wall, 3),
            "driver_peak_rss_mb": peak_rss_mb(), "executor": self.name, "workers": self.workers,
            **extra, **output_stats(job.output_dir, word), "timings": timings,
        }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
