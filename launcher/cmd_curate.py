"""`buckle curate`: curate instruction/response texts with the target model."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("curate instruction/response texts with the target model: sample revisions over a "
        "temperature x top-p grid, keep those that stay readable and helpful, beam-search by perplexity")
DEFAULT_INPUT = "commonsense-train"
DEFAULT_LIMIT = 8  # the embedded corpus without --limit: a slice that ends in minutes on 2 CPU cores

# flag -> (config key, type, help); defaults come from curation.config.CurateConfig
_FLAGS = [
    ("--model", "model", str, "model to curate with: 'embedded' (SmolLM2-135M-Instruct), an HF model id or a local path"),
    ("--objective", "objective", str, "reduce: lower perplexity (CTRL); amplify: add safety implication, "
                                      "higher perplexity"),
    ("--rounds", "rounds", int, "beam-search rounds r (stops earlier when nothing improves)"),
    ("--beam", "beam", int, "beam width k: candidates kept per round"),
    ("--temperatures", "temperatures", "floats", "comma-separated temperature grid"),
    ("--top-ps", "top_ps", "floats", "comma-separated top-p grid"),
    ("--tolerance", "tolerance", float, "quality filter: readability and helpfulness >= (1 - tolerance) x original's"),
    ("--limit", "limit", int, f"read at most N input rows (default for the embedded corpus: {DEFAULT_LIMIT})"),
    ("--batch-size", "batch_size", int, "records curated together"),
    ("--gen-batch-size", "gen_batch_size", int, "rows per generate call"),
    ("--max-new-tokens", "max_new_tokens", int, "token budget of a revision"),
    ("--max-length", "max_length", int, "token cap per sequence (default: the model's context)"),
    ("--judge", "judge", str, "helpfulness judge: offline (CPU text statistics) or openai (endpoint)"),
    ("--judge-url", "judge_url", str, "OpenAI-compatible base URL, e.g. http://localhost:8000/v1"),
    ("--judge-model", "judge_model", str, "model name for the endpoint judge"),
    ("--seed", "seed", int, "sampling seed"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:N"),
    ("--dtype", "dtype", str, "auto, float32, bfloat16, float16"),
    ("--id-column", "id_column", str, "input column holding the id (missing ids get a content hash)"),
    ("--instruction-column", "instruction_column", str, "input column holding the instruction"),
    ("--response-column", "response_column", str, "input column holding the response"),
    ("--input-column", "input_column", str, "input column holding optional extra input"),
    ("--shard-size", "shard_size", int, "curated rows per output part"),
    ("--executor", "executor", str, "local (this process) or ray"),
    ("--ray-address", "ray_address", str, "Ray cluster address (executor ray; default: start a local one)"),
    ("--num-workers", "num_workers", int, "Ray actors (executor ray)"),
]


_CHOICES = {"objective": ["reduce", "amplify"], "judge": ["offline", "openai"], "executor": ["local", "ray"],
            "dtype": ["auto", "float32", "bfloat16", "float16"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle curate` flags; each overrides the same key of --config."""
    from buckle.curation.config import CurateConfig

    defaults = CurateConfig().model_dump()
    # SUPPRESS: an absent flag leaves the config (file or default) alone, and help shows real defaults
    p.add_argument("--input", default=argparse.SUPPRESS,
                   help="JSONL/Parquet file or directory, a `datasets` id, or a named data set "
                        f"(see `buckle data list`); default: {DEFAULT_INPUT}")
    p.add_argument("--output", required=True, default=argparse.SUPPRESS, help="run directory (curated/, quarantine.jsonl, manifest.json); "
                                                   "rerunning into it resumes")
    p.add_argument("--config", default=argparse.SUPPRESS, help="YAML file of config keys (a `curate:` section is used if present)")
    for flag, key, kind, text in _FLAGS:
        shown = defaults.get(key)
        if isinstance(shown, list):
            shown = ",".join(str(x) for x in shown)
        suffix = f" (default: {shown})" if shown is not None and key != "limit" else ""
        choices = _CHOICES.get(key)
        p.add_argument(flag, dest=key, default=argparse.SUPPRESS, choices=choices,
                       metavar=("{" + ",".join(choices) + "}") if choices else ("X,Y" if kind == "floats" else "N"
                                                                                if kind is int else "X"),
                       type=str if kind == "floats" else kind, help=text + suffix)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Validate the config, resolve input and model, run the executor, print the summary."""
    from buckle.curation.config import CurateConfig
    from buckle.launcher.configs import load_config, parse_floats

    overrides = {key: getattr(args, key, None) for _, key, _, _ in _FLAGS}
    for key in ("temperatures", "top_ps"):
        overrides[key] = parse_floats(overrides[key])
    cfg = load_config(CurateConfig, getattr(args, "config", None), overrides, section="curate")
    given = getattr(args, "input", None)
    source, note = resolve_input(given)
    if given is None and cfg.limit is None:
        cfg = cfg.model_copy(update={"limit": DEFAULT_LIMIT})
        note += f" (first {DEFAULT_LIMIT} rows; --limit N for more)"
    result = curate(cfg, source, args.output, input_name=given or DEFAULT_INPUT,
                    progress=not args.no_progress, note=note)
    from buckle.curation.io.summary import format_summary

    print(format_summary(result))
    print(f"output: {Path(args.output) / 'curated'}")
    return 0


def resolve_input(name: str | None) -> tuple[str, str]:
    """A named data set (materialized), or a file/directory/dataset id; with a line saying which."""
    from buckle.launcher.data import is_named, materialize

    name = name or DEFAULT_INPUT
    if is_named(name):
        return str(materialize(name)), f"input: {name}"
    path = Path(name).expanduser()
    if not path.exists() and (path.suffix in (".jsonl", ".json", ".parquet") or name.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"input '{name}' not found")
    return (str(path) if path.exists() else name), f"input: {name}"


def curate(cfg, source: str, output: str, input_name: str = "", progress: bool = True, note: str = "") -> dict:
    """Resolve the model, make the run directory, run the configured executor; returns its counts.

    The plain-Python entry point (the pipeline calls this with a CurateConfig).
    """
    from buckle.launcher.manifest import RunDir
    from buckle.launcher.models import resolve_model

    model_path = resolve_model(cfg.model)
    run_dir = RunDir(output, "curate", {**cfg.model_dump(), "input": input_name or source})
    if note:
        print(note)
    try:
        if cfg.executor == "ray":
            from buckle.curation.executors.ray_executor import run_curate
            result = run_curate(cfg, source, output, model_path)
        else:
            from buckle.curation.executors.local import run_curate
            result = run_curate(cfg, source, output, model_path, progress=progress)
    except BaseException as exc:
        run_dir.finish(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if "mean_ppl_before" not in result:  # an executor that reports counts only
        from buckle.curation.io import store
        from buckle.curation.io.summary import curated_stats

        result.update(curated_stats(store.read_parts(output)))
    timings = result.get("timings") if isinstance(result.get("timings"), dict) else {}
    run_dir.finish(counts={k: v for k, v in result.items() if k != "timings"}, timings=timings)
    return result
