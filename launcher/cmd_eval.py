"""`buckle eval`: harmful-prompt benchmarks and benign references against a model, judged."""
from __future__ import annotations

import argparse

HELP = "evaluate a model: ASR, harmfulness, helpfulness and benign perplexity"

# flag dest -> EvalConfig key, where they differ
_RENAMES = {"judge": "judge_backend", "judge_retries": "judge_max_retries", "judge_backoff": "judge_backoff_s",
            "judge_timeout": "judge_timeout_s", "classifier": "classifier_model"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle eval` flags."""
    p.add_argument("--config", help="YAML file (keys of EvalConfig, optionally under 'eval:')")
    p.add_argument("--model", help="model: 'embedded' (default), a local dir or a hub id")
    p.add_argument("--benchmark", help="harmful prompts: advbench, advbench-test, harmbench, ... or a "
                   "CSV/JSONL/JSON/TXT/Parquet file, saved dataset dir or dataset id")
    p.add_argument("--prompt-column", help="column with the prompt text (default: prompt)")
    p.add_argument("--id-column", help="column with a stable row id (default: id)")
    p.add_argument("--split", help="dataset split for dataset ids (default: train)")
    p.add_argument("--benign", help="benign pairs {instruction, response}: commonsense-heldout or a file")
    p.add_argument("--output", required=True, help="run directory (resumable: rerun to continue)")
    p.add_argument("--label", help="row name in reports (default: output dir name)")
    p.add_argument("--limit", type=int, help="first N harmful prompts")
    p.add_argument("--benign-limit", type=int, help="first N benign pairs")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--temperature", type=float, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--system-prompt")
    p.add_argument("--judges", help="comma list of keyword,policy,classifier,helpfulness (default: automatic)")
    p.add_argument("--refusal-markers", help="file with one refusal marker per line (replaces the default list)")
    p.add_argument("--judge", choices=["openai", "hf"], help="rubric judge backend")
    p.add_argument("--judge-model", help="endpoint model name, or HF id/dir for --judge hf")
    p.add_argument("--judge-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-api-key-env", help="env var holding the API key (default: OPENAI_API_KEY if set)")
    p.add_argument("--judge-rate-limit", type=float, help="judge requests per second")
    p.add_argument("--judge-concurrency", type=int)
    p.add_argument("--judge-retries", type=int)
    p.add_argument("--judge-backoff", type=float, help="first retry delay in seconds (doubles each retry)")
    p.add_argument("--judge-timeout", type=float)
    p.add_argument("--classifier", help="Llama-Guard-style classifier: HF id or dir")
    p.add_argument("--device")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_config(args: argparse.Namespace) -> "EvalConfig":  # noqa: F821 (imported lazily)
    """Merge YAML and flags, resolve model and data names, validate into an EvalConfig."""
    from buckle.eval.config import EvalConfig
    from buckle.launcher.configs import load_config, read_yaml
    from buckle.launcher.data import is_named, materialize
    from buckle.launcher.models import resolve_model

    data = read_yaml(args.config) if args.config else {}
    if isinstance(data.get("eval"), dict):
        data = data["eval"]
    skip = {"config", "command", "debug", "no_progress", "refusal_markers"}
    for key, value in vars(args).items():
        if not key.startswith("_") and key not in skip and value is not None:
            data[_RENAMES.get(key, key)] = value
    if isinstance(data.get("judges"), str):
        data["judges"] = [j.strip() for j in data["judges"].split(",") if j.strip()]
    if args.refusal_markers:
        from buckle.eval.judges.keyword import load_markers

        data["refusal_markers"] = load_markers(args.refusal_markers)
    if args.no_progress:
        data["progress"] = False
    data["model"] = resolve_model(data.get("model"))
    for key in ("benchmark", "benign"):
        if data.get(key) and is_named(data[key]):
            data[f"{key}_name"] = data[key]
            data[key] = str(materialize(data[key]))
    if data.get("judge_backend") == "hf" and data.get("judge_model"):
        data["judge_model"] = resolve_model(data["judge_model"])
    if data.get("classifier_model"):
        data["classifier_model"] = resolve_model(data["classifier_model"])
    return load_config(EvalConfig, None, data)


def run(args: argparse.Namespace) -> int:
    """Run `buckle eval`; prints the summary table."""
    from pathlib import Path

    from buckle.eval.run import evaluate
    from buckle.eval.store import check_state
    from buckle.launcher.manifest import RunDir

    cfg = build_config(args)
    check_state(Path(cfg.output), cfg.generation_key(), write=False)  # before the manifest is touched
    run_dir = RunDir(cfg.output, "eval", cfg.model_dump())
    try:
        summary = evaluate(cfg)
    except BaseException:
        run_dir.finish(status="failed")
        raise
    counts = {k: summary.get(k) for k in ("n_prompts", "n_rejected", "n_benign") if k in summary}
    run_dir.finish(counts=counts, timings=summary.get("timings"),
                   metrics={k: m["value"] for k, m in summary["metrics"].items()})
    print((run_dir.path / "summary.md").read_text(encoding="utf-8"))
    return 0
