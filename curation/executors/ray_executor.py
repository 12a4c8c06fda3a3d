"""The Ray executor: the same steps and shard protocol as the local executor, on an actor pool.

Pipeline: one read task per shard (curation.io.reader) -> `map_batches` on a
pool of step actors (model loaded once per actor; one GPU each where the
cluster has GPUs, else fractional CPUs so read tasks always find a slot) ->
the driver streams results into curation.io.sink, which writes each shard
once it is complete. Actors killed mid-run are restarted and their batches
retried; retried rows replace, never add. A record whose step raises is
quarantined with the error (curation.executors.apply reruns the batch record by record).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import resource
from typing import Any

from buckle.curation.executors.apply import make_step, process, quarantine_line, step_batch
from buckle.curation.executors.base import Executor, Job
from buckle.curation.io.reader import read_shard
from buckle.curation.io.records import Columns
from buckle.curation.io.sharding import Shard

BLOCK_FIELDS = ("shard", "n", "seq", "id", "where", "kind", "data", "rss_mb")
_STANDARD = {"CPU", "GPU", "memory", "object_store_memory"}
READ_CPUS = 0.1  # read tasks are light; they must never wait behind the actors
ACTOR_START_S = 1800  # time for all actors to load the model (large models load slowly)


class RayExecutor(Executor):
    """Runs the step on a Ray actor pool (cfg.num_workers actors) and commits shards as they complete.

    Connects to cfg.ray_address, or starts a private local Ray for the run
    (curation.executors.ray_cluster.ray_session).
    """

    name = "ray"

    @property
    def workers(self) -> int:
        """Actors in the pool."""
        return self.cfg.num_workers

    def execute(self, job: Job) -> dict[str, Any]:
        """Run every shard of the plan on the pool; returns where it ran and peak memory."""
        from buckle.curation.executors.ray_cluster import ray_session

        with ray_session(self.cfg.ray_address) as info:
            return {"ray_address": info.address, **_run_pool(self.cfg, job, self.model_path, self.models)}


def _run_pool(cfg: Any, job: Job, model_path: str, models: dict[str, str] | None = None) -> dict:
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = False
    # start work once the whole pool is up: every worker gets a share, and a pool that
    # cannot be placed fails with a clear timeout instead of waiting forever
    ctx.wait_for_min_actors_s = ACTOR_START_S
    res = worker_resources(cfg.num_workers, ray.nodes(), cfg.cpus_per_worker)
    res.update(engine_placement(cfg, res))
    source = _shard_source(job.plan.shards, job.cols)
    ds = ray.data.read_datasource(source, num_cpus=READ_CPUS)
    # Ray Data restarts dead pool actors and retries their batches (max_restarts and
    # max_task_retries default to -1 for actor pools); the sink makes retries idempotent.
    ds = ds.map_batches(
        _worker_class(job.kind, cfg, model_path, res.pop("threads"), models),
        batch_size=step_batch(cfg, job.kind), batch_format="pyarrow",
        compute=ActorPoolStrategy(size=cfg.num_workers), **res)
    peak = 0.0
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                payload = json.loads(row["data"]) if row["kind"] == "ok" else row["data"]
                job.sink.add(row["shard"], row["n"], row["seq"], row["kind"], payload)
                peak = max(peak, row["rss_mb"] or 0.0)
    except Exception as exc:  # Ray's errors carry whole remote tracebacks: keep the last line
        last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500]
        raise RuntimeError(f"the Ray job failed: {last}; finished shards are kept, "
                           "rerun the same command to resume") from exc
    custom = {n["NodeID"]: sorted(k for k in n.get("Resources", {}) if k not in _STANDARD
                                  and not k.startswith("node:")) for n in ray.nodes()}
    return {"worker_peak_rss_mb": round(peak, 1), "rows_by_node": dict(job.sink.by_node),
            "node_resources": {node: custom.get(node, []) for node in job.sink.by_node},
            "cpus_per_worker": res.get("num_cpus"), "gpus_per_worker": res.get("num_gpus", 0)}


def worker_resources(workers: int, nodes: list[dict], cpus: float | None = None) -> dict:
    """Ray resources per actor, and torch threads per actor.

    GPUs in the cluster: one GPU per actor. Otherwise the largest CPU share that
    still fits `workers` actors on the nodes with READ_CPUS left on each
    (a whole CPU per actor on a 2-CPU node starves the read tasks).
    """
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    gpus = sum(int(r.get("GPU", 0)) for r in alive)
    if gpus:
        if workers > gpus:
            raise ValueError(f"num_workers {workers} is more than the cluster's {gpus} GPUs (one per worker)")
        return {"num_gpus": 1, "num_cpus": cpus or 1, "threads": max(1, int(cpus or 1))}
    free = [r.get("CPU", 0) - READ_CPUS for r in alive]
    if cpus is None:
        options = [f / k for f in free for k in range(1, workers + 1) if f > 0]
        fits = [c for c in options if sum(math.floor(f / c + 1e-9) for f in free) >= workers]
        cpus = max(math.floor(100 * max(fits)) / 100 if fits else 0.05, 0.05)
    elif sum(math.floor(f / cpus + 1e-9) for f in free if f > 0) < workers:
        raise ValueError(f"cpus_per_worker {cpus} x num_workers {workers} does not fit the cluster's "
                         f"nodes (CPUs: {[r.get('CPU', 0) for r in alive]})")
    # torch threads: whole CPUs only; spare threads spin and slow everyone on a busy node
    return {"num_cpus": cpus, "threads": max(1, int(cpus))}


def engine_placement(cfg: Any, res: dict) -> dict:
    """Ray remote args that give a multi-GPU vLLM engine (tp x pp > 1) its GPUs.

    The same scheme as ray.data.llm's vLLM stage: the actor itself asks for no GPU;
    `ray_remote_args_fn` makes one placement group of tp x pp {GPU, CPU} bundles per
    actor (PACK: one node where it fits), and vLLM's Ray executor places its workers
    in the actor's group (placement_group_capture_child_tasks). Empty otherwise.
    """
    gpus = getattr(cfg, "tensor_parallel_size", 1) * getattr(cfg, "pipeline_parallel_size", 1)
    if gpus <= 1 or getattr(cfg, "engine", "auto") in ("hf", "openai", "server") or not res.get("num_gpus"):
        return {}  # one GPU (or CPUs) per actor, as worker_resources gave
    res.pop("num_gpus", None)
    return {"num_gpus": 0, "ray_remote_args_fn": functools.partial(_engine_group, gpus)}


def _engine_group(gpus: int) -> dict:
    from ray.util import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group([{"GPU": 1, "CPU": 1}] * gpus, strategy="PACK")
    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)}


def _shard_source(shards: list[Shard], cols: Columns) -> Any:
    """A Ray Data datasource with one read task per shard."""
    from ray.data import Datasource
    from ray.data.block import BlockMetadata
    from ray.data.datasource import ReadTask

    class ShardDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int:
            return sum(s.rows for s in shards) * 1024

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
            return [ReadTask(functools.partial(_read_block, s, cols),
                             BlockMetadata(num_rows=s.rows, size_bytes=s.rows * 1024,
                                           exec_stats=None, input_files=None))
                    for s in shards]

    return ShardDatasource()


def _read_block(shard: Shard, cols: Columns) -> list:
    import pyarrow as pa

    items = read_shard(shard, cols)
    rows = []
    for seq, (where, item) in enumerate(items):
        ok = isinstance(item, dict)
        rows.append({"shard": shard.key, "n": len(items), "seq": seq, "id": item["id"] if ok else None,
                     "where": where, "kind": "ok" if ok else "bad", "rss_mb": None,
                     "data": json.dumps(item) if ok else quarantine_line(shard.key, where, item)})
    if not rows:  # a shard of unicode-blank lines: one sentinel so it still completes
        rows.append({"shard": shard.key, "n": 1, "seq": 0, "id": None, "where": "",
                     "kind": "empty", "data": "", "rss_mb": None})
    return [pa.Table.from_pylist(rows, schema=_block_schema())]


@functools.lru_cache(maxsize=1)
def _block_schema():
    import pyarrow as pa

    types = {"n": pa.int64(), "seq": pa.int64(), "rss_mb": pa.float64()}
    return pa.schema([(f, types.get(f, pa.string())) for f in BLOCK_FIELDS])


def _worker_class(kind: str, cfg: Any, model_path: str, threads: int,
                  models: dict[str, str] | None = None) -> type:
    """The actor class with its arguments bound (shipped with the class, so an actor
    restart never depends on constructor arguments kept in the object store). The config
    and every role's path travel with it: a curation actor builds a CurateStep holding
    the reviser and the scorer (one engine where they are the same model)."""

    class StepWorker(_StepWorker):
        def __init__(self):
            super().__init__(kind, cfg, model_path, threads, models)

    return StepWorker


class _StepWorker:
    """An actor holding one step (and its models) for its whole life."""

    def __init__(self, kind: str, cfg: Any, model_path: str, threads: int, models: dict[str, str] | None = None):
        import ray
        import torch

        torch.set_num_threads(threads)
        self.step = make_step(kind, cfg, model_path, models)
        self.provenance = {"node_id": ray.get_runtime_context().get_node_id(), "worker_pid": os.getpid()}

    def __call__(self, batch):
        import pyarrow as pa

        rows = batch.to_pylist()
        todo = [r for r in rows if r["kind"] == "ok"]
        chunk = [(r["shard"], r["where"], json.loads(r["data"])) for r in todo]
        for row, (kind, payload) in zip(todo, process(self.step, chunk, self.provenance)):
            row["kind"] = kind
            row["data"] = json.dumps(payload) if kind == "ok" else payload
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for row in rows:
            row["rss_mb"] = rss
        return pa.Table.from_pylist(rows, schema=_block_schema())
