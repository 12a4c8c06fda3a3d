"""`buckle score`: perplexity of every response under the target model (no rewriting).

Cheap compared to `buckle curate`; users run it first to pick which texts to
curate. Runs in this process or on Ray (same step, same output, resumable).
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "score response perplexity under the target model (no rewriting), locally or on Ray"
SHARD_SIZE = 1024  # scoring is fast per row: bigger shards than curation's

# flag -> (config key, type, help)
_FLAGS = [
    ("--model", "model", str, "model: 'embedded' (SmolLM2-135M-Instruct), an HF model id or a local path"),
    ("--limit", "limit", int, "read at most N input rows"),
    ("--batch-size", "batch_size", int, "texts per forward pass (a step call takes 8 batches)"),
    ("--max-length", "max_length", int, "token cap per text (default: the model's context); longer texts "
                                        "are quarantined"),
    ("--shard-size", "shard_size", int, f"rows per output part, the unit of resume (default: {SHARD_SIZE})"),
    ("--executor", "executor", str, "local (this process) or ray"),
    ("--ray-address", "ray_address", str, "Ray cluster address (executor ray; default: start a private "
                                          "local Ray with token auth)"),
    ("--num-workers", "num_workers", int, "Ray actors, each holding the model once (executor ray)"),
    ("--cpus-per-worker", "cpus_per_worker", float, "Ray CPUs per actor (default: fit the workers on the nodes)"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N"),
    ("--dtype", "dtype", str, "auto, float32, bfloat16, float16"),
    ("--id-column", "id_column", str, "input column holding the id (missing ids get a content hash)"),
    ("--instruction-column", "instruction_column", str, "input column holding the instruction"),
    ("--response-column", "response_column", str, "input column holding the response"),
    ("--input-column", "input_column", str, "input column holding optional extra input"),
]
_CHOICES = {"executor": ["local", "ray"], "dtype": ["auto", "float32", "bfloat16", "float16"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle score` flags; each overrides the same key of --config."""
    p.add_argument("--input", default=argparse.SUPPRESS,
                   help="JSONL/Parquet file or directory, a `datasets` id, or a named data set "
                        "(see `buckle data list`); default: commonsense-train")
    p.add_argument("--output", required=True, default=argparse.SUPPRESS,
                   help="run directory (scored/, quarantine.jsonl, manifest.json); rerunning into it resumes")
    p.add_argument("--config", default=argparse.SUPPRESS,
                   help="YAML file of config keys (a `score:` section is used if present)")
    from buckle.curation.config import CurateConfig

    defaults = CurateConfig().model_dump()
    for flag, key, kind, text in _FLAGS:
        shown = defaults.get(key) if key != "shard_size" else None
        suffix = f" (default: {shown})" if shown is not None else ""
        choices = _CHOICES.get(key)
        metavar = "{" + ",".join(choices) + "}" if choices else ("N" if kind is int else "X")
        p.add_argument(flag, dest=key, default=argparse.SUPPRESS, type=kind, choices=choices,
                       metavar=metavar, help=text + suffix)


def run(args: argparse.Namespace) -> int:
    """Validate the config, resolve input and model, run the executor, print the summary."""
    from buckle.curation.config import CurateConfig
    from buckle.launcher.cmd_curate import resolve_input
    from buckle.launcher.configs import load_config, read_yaml

    path = getattr(args, "config", None)
    overrides = {key: getattr(args, key, None) for _, key, _, _ in _FLAGS}
    if overrides["shard_size"] is None and "shard_size" not in _section(read_yaml(path) if path else {}):
        overrides["shard_size"] = SHARD_SIZE
    cfg = load_config(CurateConfig, path, overrides, section="score")
    source, note = resolve_input(getattr(args, "input", None))
    print(note)
    result = score(cfg, source, args.output, input_name=getattr(args, "input", None) or source)
    print(format_summary(result))
    print(f"output: {Path(args.output) / 'scored'}")
    return 0


def _section(data: dict) -> dict:
    return data["score"] if isinstance(data.get("score"), dict) else data


def score(cfg, source: str, output: str, input_name: str = "") -> dict:
    """Resolve the model, make the run directory, run the configured executor; returns its counts.

    The plain-Python entry point (the pipeline calls this with a CurateConfig).
    """
    from buckle.launcher.manifest import RunDir
    from buckle.launcher.models import resolve_model

    model_path = resolve_model(cfg.model)
    run_dir = RunDir(output, "score", {**cfg.model_dump(), "input": input_name or source})
    try:
        if cfg.executor == "ray":
            from buckle.curation.executors.ray_executor import run_score
        else:
            from buckle.curation.method.score import run_score
        result = run_score(cfg, source, output, model_path)
    except BaseException as exc:
        run_dir.finish(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    result["mean_perplexity"] = mean_perplexity(output)
    run_dir.finish(counts=result, timings={"run_s": result.get("wall_s", 0.0)})
    return result


def mean_perplexity(output: str) -> float | None:
    """Mean perplexity over every scored part (read one column at a time)."""
    import math

    import pyarrow.parquet as pq

    total, n = 0.0, 0
    for part in sorted((Path(output) / "scored").glob("part-*.parquet")):
        for value in pq.read_table(part, columns=["perplexity"]).column("perplexity").to_pylist():
            if value is not None and math.isfinite(value):
                total, n = total + value, n + 1
    return total / n if n else None


def format_summary(result: dict) -> str:
    """`read N = scored S + quarantined Q`, the mean perplexity, and shard counts."""
    mean = result.get("mean_perplexity")
    lines = [f"read {result['read']} = scored {result['scored']} + quarantined {result['quarantined']}",
             f"mean perplexity {mean:.3f}" if mean is not None else "mean perplexity -",
             f"shards: {result['shards_computed']} computed, {result['shards_skipped']} done before "
             f"(kept); {result.get('steady_rows_per_s', 0)} rows/s on {result.get('executor')}"]
    return "\n".join(lines)
