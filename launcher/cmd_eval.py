"""`buckle eval`: harmful-prompt benchmarks and benign references against a model, judged."""
from __future__ import annotations

import argparse

HELP = "evaluate a model: ASR, harmfulness, helpfulness and benign perplexity"

# EvalConfig field -> flag, where they differ
_RENAMES = {"judge_backend": "--judge", "judge_max_retries": "--judge-retries", "judge_backoff_s": "--judge-backoff",
            "judge_timeout_s": "--judge-timeout", "classifier_model": "--classifier"}
# fields without a flag of their own: set below by hand, or by build_config from names
_NO_FLAG = ("output", "benchmark_name", "benign_name", "refusal_markers", "benchmark_sources",
            "harmful_reference_name", "benign_prompts_name")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle eval` flags: one per EvalConfig field, each overriding --config's key."""
    from buckle.eval.config import EvalConfig
    from buckle.launcher.flags import add_model_flags

    p.add_argument("--config", help="YAML file (keys of EvalConfig, optionally under 'eval:')")
    p.add_argument("--output", required=True, help=EvalConfig.model_fields["output"].description)
    p.add_argument("--refusal-markers", dest="refusal_markers_file", metavar="FILE",
                   help="file with one refusal marker per line (replaces the default list)")
    add_model_flags(p, EvalConfig, exclude=_NO_FLAG, rename=_RENAMES)


def build_config(args: argparse.Namespace) -> "EvalConfig":  # noqa: F821 (imported lazily)
    """Merge YAML and flags, resolve model and data names, validate into an EvalConfig."""
    from buckle.core.config import load_config, read_yaml
    from buckle.eval.config import EvalConfig
    from buckle.eval.run import resolve_judge_names
    from buckle.core.catalog.data import is_named, materialize
    from buckle.launcher.flags import overrides_from
    from buckle.core.catalog.models import resolve_model

    data = read_yaml(args.config) if args.config else {}
    if isinstance(data.get("eval"), dict):
        data = data["eval"]
    data.update(overrides_from(args, EvalConfig))
    if isinstance(data.get("judges"), str):  # a YAML string like the flag's
        data["judges"] = [j.strip() for j in data["judges"].split(",") if j.strip()]
    if args.refusal_markers_file:
        from buckle.eval.judges.keyword import load_markers

        data["refusal_markers"] = load_markers(args.refusal_markers_file)
    if isinstance(data.get("benchmarks"), str):
        data["benchmarks"] = [b.strip() for b in data["benchmarks"].split(",") if b.strip()]
    data["model"] = resolve_model(data.get("model"))
    for key in ("benchmark", "benign", "harmful_reference", "benign_prompts"):
        if data.get(key) and is_named(data[key]):
            data[f"{key}_name"] = data[key]
            data[key] = str(materialize(data[key]))
    if data.get("benchmarks"):
        data["benchmark_sources"] = {b: str(materialize(b)) if is_named(b) else b for b in data["benchmarks"]}
    resolve_judge_names(data)
    return load_config(EvalConfig, None, data)


def run(args: argparse.Namespace) -> int:
    """Run `buckle eval`; prints the summary table."""
    from pathlib import Path

    from buckle.eval.run import evaluate
    from buckle.eval.store import check_state
    from buckle.core.manifest import RunDir

    cfg = build_config(args)
    check_state(Path(cfg.output), cfg.generation_key(), write=False)  # before the manifest is touched
    run_dir = RunDir(cfg.output, "eval", cfg.model_dump())
    try:
        summary = evaluate(cfg)
    except BaseException:
        run_dir.finish(status="failed")
        raise
    counts = {k: summary.get(k) for k in ("n_prompts", "n_rejected", "n_benign", "engine") if k in summary}
    run_dir.finish(counts=counts, timings=summary.get("timings"),
                   metrics={k: m["value"] for k, m in summary["metrics"].items()})
    print((run_dir.path / "summary.md").read_text(encoding="utf-8"))
    return 0
