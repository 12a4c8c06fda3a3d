"""`buckle curate`: curate instruction/response texts with the target model."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("curate instruction/response texts with the target model: sample revisions over a "
        "temperature x top-p grid, keep those that stay readable and helpful, beam-search by perplexity")
DEFAULT_INPUT = "commonsense-train"
DEFAULT_LIMIT = 8  # the embedded corpus without --limit: a slice that ends in minutes on 2 CPU cores


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle curate` flags: one per CurateConfig field, each overriding --config's key."""
    from buckle.curation.config import CurateConfig
    from buckle.launcher.flags import add_model_flags

    # SUPPRESS: an absent flag leaves the config (file or default) alone
    p.add_argument("--input", default=argparse.SUPPRESS,
                   help="JSONL/Parquet file or directory, a `datasets` id, or a named data set "
                        f"(see `buckle data list`); default: {DEFAULT_INPUT} (its first {DEFAULT_LIMIT} "
                        "rows unless --limit)")
    p.add_argument("--output", required=True, default=argparse.SUPPRESS,
                   help="run directory (curated/, quarantine.jsonl, manifest.json); rerunning into it resumes")
    p.add_argument("--config", default=argparse.SUPPRESS,
                   help="YAML file of config keys (a `curate:` section is used if present)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_flags(p, CurateConfig)


def run(args: argparse.Namespace) -> int:
    """Validate the config, resolve input and model, run the executor, print the summary."""
    from buckle.curation.config import CurateConfig
    from buckle.core.config import load_config
    from buckle.launcher.flags import overrides_from

    overrides = overrides_from(args, CurateConfig)
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
    from buckle.core.catalog.data import is_named, materialize

    name = name or DEFAULT_INPUT
    if is_named(name):
        return str(materialize(name)), f"input: {name}"
    path = Path(name).expanduser()
    if not path.exists() and (path.suffix in (".jsonl", ".json", ".parquet") or name.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"input '{name}' not found")
    return (str(path) if path.exists() else name), f"input: {name}"


def curate(cfg, source: str, output: str, input_name: str = "", progress: bool = True, note: str = "") -> dict:
    """The plain-Python entry point (takes a CurateConfig): see `run_recorded`."""
    from buckle.curation.executors.recorded import run_recorded

    return run_recorded(cfg, "curate", source, output, input_name, progress, note)
