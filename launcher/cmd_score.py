"""`buckle score`: perplexity of every response under the target model (no rewriting).

Cheap compared to `buckle curate`; users run it first to pick which texts to
curate. Runs in this process or on Ray (same step, same output, resumable).
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "score response perplexity under the target model (no rewriting), locally or on Ray"
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle score` flags: one per ScoreConfig field, each overriding --config's key."""
    from buckle.curation.config import ScoreConfig
    from buckle.launcher.flags import add_model_flags

    p.add_argument("--input", default=argparse.SUPPRESS,
                   help="JSONL/Parquet file or directory, a `datasets` id, or a named data set "
                        "(see `buckle data list`); default: commonsense-train")
    p.add_argument("--output", required=True, default=argparse.SUPPRESS,
                   help="run directory (scored/, quarantine.jsonl, manifest.json); rerunning into it resumes")
    p.add_argument("--config", default=argparse.SUPPRESS,
                   help="YAML file of config keys (a `score:` section is used if present)")
    add_model_flags(p, ScoreConfig)


def run(args: argparse.Namespace) -> int:
    """Validate the config, resolve input and model, run the executor, print the summary."""
    from buckle.curation.config import ScoreConfig
    from buckle.launcher.cmd_curate import resolve_input
    from buckle.core.config import load_config
    from buckle.launcher.flags import overrides_from

    cfg = load_config(ScoreConfig, getattr(args, "config", None), overrides_from(args, ScoreConfig), section="score")
    source, note = resolve_input(getattr(args, "input", None))
    print(note)
    result = score(cfg, source, args.output, input_name=getattr(args, "input", None) or source)
    print(format_summary(result))
    print(f"output: {Path(args.output) / 'scored'}")
    return 0


def score(cfg, source: str, output: str, input_name: str = "") -> dict:
    """The plain-Python entry point (takes a ScoreConfig): see `run_recorded`."""
    from buckle.curation.executors.recorded import run_recorded

    return run_recorded(cfg, "score", source, output, input_name)


def format_summary(result: dict) -> str:
    """`read N = scored S + quarantined Q`, the mean perplexity, and shard counts."""
    mean = result.get("mean_perplexity")
    lines = [f"read {result['read']} = scored {result['scored']} + quarantined {result['quarantined']}",
             f"mean perplexity {mean:.3f}" if mean is not None else "mean perplexity -",
             f"shards: {result['shards_computed']} computed, {result['shards_skipped']} done before "
             f"(kept); {result.get('steady_rows_per_s', 0)} rows/s on {result.get('executor')}"]
    return "\n".join(lines)
