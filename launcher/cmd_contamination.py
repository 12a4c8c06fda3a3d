"""`buckle contamination --config FILE --output DIR`: training data against evaluation sets, clean copies."""
from __future__ import annotations

import argparse

HELP = ("check training sources and curated texts against evaluation sets (exact and near-duplicate "
        "overlap); write clean copies of the evaluation sets and the table")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle contamination` flags."""
    p.add_argument("--config", required=True, help="YAML/JSON of ContaminationConfig keys: sources, curated, "
                                                   "evals, mode, threshold, prompt_column, id_column, split")
    p.add_argument("--output", required=True, help="folder for clean/*.jsonl, contamination.json and .md")


def run(args: argparse.Namespace) -> int:
    """Run `buckle contamination`; prints the table."""
    from pathlib import Path

    from buckle.core.config import load_config
    from buckle.eval.contamination import ContaminationConfig, check, resolve
    from buckle.train.config import DataSpec
    from buckle.train.sources import read_source

    cfg = load_config(ContaminationConfig, args.config)
    texts = {}
    for name, spec in cfg.sources.items():  # read as the training stage reads it: the train package's reader
        fields = {k: v for k, v in spec.items() if k != "role"}
        records, _ = read_source(DataSpec(**{**fields, "source": resolve(spec["source"])}), spec["role"])
        texts[name] = [t for r in records for t in (r["prompt"], r["response"]) if t]
    out = Path(args.output)
    result = check(cfg, texts, out)
    print((out / "contamination.md").read_text(encoding="utf-8"), end="")
    print(f"clean copies: {', '.join(result['clean'].values())}")
    return 0
