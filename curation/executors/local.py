"""The local executor: read, screen, curate in batches, write parts; resumable per id."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from buckle.curation.io import store
from buckle.curation.config import CurateConfig
from buckle.curation.io.readers import read_located
from buckle.curation.io.records import Columns, Quarantine
from buckle.curation.io.summary import curated_stats


def columns(cfg: CurateConfig) -> Columns:
    """The input column mapping of a config."""
    return Columns(id=cfg.id_column, instruction=cfg.instruction_column,
                   response=cfg.response_column, input=cfg.input_column)


def run_curate(cfg: CurateConfig, input_source: str, output_dir: str, model_path: str,
               progress: bool = True) -> dict[str, Any]:
    """Curate every input record in this process.

    Ids already under OUTPUT/curated are skipped (and counted as curated), so a
    rerun into the same output resumes and never writes a record twice. Bad
    rows go to OUTPUT/quarantine.jsonl; the model loads only if there is work.

    Args:
        cfg: the run's config (limit, batch_size, shard_size, column mapping apply here).
        input_source: JSONL/Parquet file, directory of those, or a `datasets` id.
        output_dir: where curated/ and quarantine.jsonl go.
        model_path: what `from_pretrained` loads.
        progress: show a progress bar on stderr.

    Returns:
        read, curated, quarantined, skipped_existing, improved, texts, mean_ppl_before,
        mean_ppl_after, acceptance_rate, candidate counts and timings (seconds).
    """
    run = _Run(cfg, Path(output_dir), model_path, progress)
    try:
        for where, item in read_located(input_source, columns(cfg), cfg.limit):
            run.take(where, item)
        run.drain()
    finally:
        run.close()
    return run.result()


class _Run:
    """State of one local run: pending batch, unwritten rows, counts."""

    def __init__(self, cfg: CurateConfig, out: Path, model_path: str, progress: bool):
        from tqdm import tqdm

        self.cfg, self.out, self.model_path = cfg, out, model_path
        self.t0 = time.time()
        self.done = store.done_ids(out)
        self.quarantined = store.quarantined_wheres(out)
        self.seen: dict[str, str] = {}
        self.counts: Counter = Counter(read=0, curated=0, quarantined=0, skipped_existing=0)
        self.step: Any = None
        self.pending: list[dict] = []
        self.unwritten: list[dict] = []
        self.new_rows: list[dict] = []
        self.kept_ids: list[str] = []
        self.timings: Counter = Counter()
        self.bar = tqdm(total=cfg.limit, unit="text", desc="curate", disable=not progress, leave=False)

    def take(self, where: str, item: dict | Quarantine) -> None:
        """Route one read item: quarantine, skip (done before), or queue for curation."""
        self.counts["read"] += 1
        if isinstance(item, Quarantine):
            return self._quarantine(item)
        rid = item["id"]
        if rid in self.seen:
            return self._quarantine(Quarantine(where, f"duplicate id '{rid}' (first at {self.seen[rid]})", item))
        self.seen[rid] = where
        if rid in self.done:
            self.counts["skipped_existing"] += 1
            self.counts["curated"] += 1
            self.kept_ids.append(rid)
            self.bar.update(1)
            return None
        checked = self._get_step().screen(item, where)
        if isinstance(checked, Quarantine):
            return self._quarantine(checked)
        self.pending.append(checked)
        if len(self.pending) >= self.cfg.batch_size:
            self.drain()
        return None

    def drain(self) -> None:
        """Curate the pending batch; write a part when a shard's worth of rows is ready."""
        if not self.pending:
            return
        t = time.time()
        rows = self.step(self.pending)
        self.timings["curate_s"] += time.time() - t
        self.counts["curated"] += len(rows)
        self.unwritten.extend(rows)
        self.new_rows.extend(rows)
        self.bar.update(len(self.pending))
        self.pending = []
        if len(self.unwritten) >= self.cfg.shard_size:
            self._write()

    def close(self) -> None:
        """Write what was curated (also after an error or Ctrl-C) and close the bar."""
        self._write()
        self.bar.close()

    def result(self) -> dict[str, Any]:
        """Counts, perplexity means over every text this run read, candidate stats, timings."""
        rows = list(self.new_rows)
        if self.kept_ids:  # texts curated by an earlier run still count in the means
            kept = set(self.kept_ids)
            rows += [r for r in store.read_parts(self.out) if r["id"] in kept]
        stats = self.step.stats if self.step else {}
        self.timings["total_s"] = time.time() - self.t0
        timings = {k: round(v, 3) for k, v in self.timings.items()}
        if self.new_rows:
            timings["s_per_text"] = round(timings.get("curate_s", 0) / len(self.new_rows), 3)
        return {**dict(self.counts), "curated_new": len(self.new_rows), **curated_stats(rows),
                "generated": stats.get("generated", 0), "unique": stats.get("unique", 0),
                "passed_filter": stats.get("passed_filter", 0), "executor": "local", "timings": timings}

    def _get_step(self) -> Any:
        if self.step is None:
            from buckle.curation.method.steps import CurateStep

            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # one progress bar (ours) is enough
            t = time.time()
            self.step = CurateStep(self.cfg, self.model_path)
            self.timings["load_s"] += time.time() - t
            rounds = self.cfg.rounds
            self.step.search.on_round = lambda r, n: self.bar.set_postfix_str(f"round {r}/{rounds}, {n} active")
        return self.step

    def _quarantine(self, entry: Quarantine) -> None:
        self.counts["quarantined"] += 1
        store.append_quarantine(self.out, [entry], self.quarantined)
        self.bar.update(1)

    def _write(self) -> None:
        if self.unwritten:
            store.write_part(self.out, "curated", self.unwritten)
            self.unwritten = []
