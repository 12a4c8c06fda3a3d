"""The local executor: the shard protocol in this process, with a progress bar."""
from __future__ import annotations

import os
import socket
import time
from typing import Any

from buckle.curation.executors.apply import make_step, process, step_batch
from buckle.curation.executors.base import Executor, Job
from buckle.curation.executors.progress import Bar, Progress
from buckle.curation.io.reader import read_shard


class LocalExecutor(Executor):
    """Reads each shard, runs the step on it batch by batch, commits it; the model loads once."""

    name = "local"

    def make_progress(self, total: int, already: int) -> Progress:
        """A bar on stderr (rows done/total, percent, rate, ETA), unless progress is off."""
        if not self.show_progress:
            return super().make_progress(total, already)
        return Bar(self.kind, total, already)

    def execute(self, job: Job) -> dict[str, Any]:
        """Run every shard of the plan here; returns step statistics and timings."""
        prov = {"node_id": socket.gethostname(), "worker_pid": os.getpid()}
        size, timings = step_batch(self.cfg, self.kind), {"load_s": 0.0, f"{self.kind}_s": 0.0}
        step = None
        for shard in job.plan.shards:
            items = read_shard(shard, job.cols)
            if step is None:  # only now: a run with nothing left to do loads no model
                t = time.time()
                step = self._load(job)
                timings["load_s"] += time.time() - t
            if not items:  # a shard of unicode-blank lines still completes
                job.sink.add(shard.key, 1, 0, "empty", None)
            for lo in range(0, len(items), size):
                t = time.time()
                chunk = [(shard.key, where, item) for where, item in items[lo:lo + size]]
                for seq, (kind, payload) in enumerate(process(step, chunk, prov), start=lo):
                    job.sink.add(shard.key, len(items), seq, kind, payload)
                timings[f"{self.kind}_s"] += time.time() - t
        if job.sink.counts["rows"]:
            timings["s_per_text"] = timings[f"{self.kind}_s"] / job.sink.counts["rows"]
        stats = dict(getattr(step, "stats", {}))
        return {**stats, "timings": {k: round(v, 3) for k, v in timings.items()}}

    def _load(self, job: Job) -> Any:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one progress bar (ours) is enough
        step = make_step(self.kind, self.cfg, self.model_path, self.models)
        search = getattr(step, "search", None)
        if search is not None:  # the beam search says which round it is in
            rounds = self.cfg.rounds
            search.on_round = lambda r, n: job.progress.note(f"round {r}/{rounds}, {n} active")
        return step
