"""Where curation steps run: one shard protocol, executed in this process or on a Ray cluster.

`run(cfg, source, output_dir, kind, model_path, progress=True)` is the entry
point; it picks `LocalExecutor` or `RayExecutor` by `cfg.executor`.
"""
from buckle.curation.executors.base import Executor, run

__all__ = ["Executor", "run"]
