"""`buckle judges check`: each judge's agreement with pyrit's human-labelled evaluation sets."""
from __future__ import annotations

import argparse

HELP = "measure judges against human labels (accuracy, precision, recall, F1, Cohen's kappa)"
KINDS = ("keyword", "yesno", "policy", "strongreject", "classifier")
# flag dest -> EvalConfig key: the judges are built by the eval package's one factory
SETTINGS = {"judge_backend": "judge_backend", "judge_model": "judge_model", "judge_url": "judge_url",
            "judge_api_key_env": "judge_api_key_env", "classifier": "classifier_model",
            "yesno_model": "yesno_model", "yesno_threshold": "yesno_threshold"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle judges check` and its flags."""
    sub = p.add_subparsers(dest="judges_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help=HELP, description=HELP)
    c.add_argument("--judge", default="keyword",
                   help=f"comma list of judges: {', '.join(KINDS)} (policy/strongreject need --judge-backend)")
    c.add_argument("--set", dest="sets", default="objective",
                   help="comma list of label sets: objective, refusal, harm, or all")
    c.add_argument("--config", help="YAML of `buckle eval` judge keys (judge_*, classifier_model, yesno_model, "
                                    "strongreject_prompts, refusal_markers); flags override them")
    c.add_argument("--limit", type=int, help="judge a seeded sample of N rows per set (balanced unless --no-balanced)")
    c.add_argument("--model-limit", type=int, help="judges that run a model (all but keyword): a sample of N "
                                                   "rows instead (default: --limit)")
    c.add_argument("--balanced", action=argparse.BooleanOptionalAction, default=True,
                   help="with --limit: half successes, half failures")
    c.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    c.add_argument("--output", help="folder for agreement.json and agreement.md (default: print only)")
    c.add_argument("--cache", help="folder of cached results (default: the buckle cache)")
    c.add_argument("--judge-backend", choices=["openai", "hf"], help="rubric judge backend")
    c.add_argument("--judge-model", help="endpoint model name, or HF id/dir for backend hf")
    c.add_argument("--judge-url", help="OpenAI-compatible base URL")
    c.add_argument("--judge-api-key-env", help="env var holding the API key")
    c.add_argument("--classifier", help="Llama-Guard-style classifier: HF id or dir")
    c.add_argument("--yesno-model", help="yes/no judge model (default: the named qwen2.5-coder-1.5b-instruct)")
    c.add_argument("--yesno-threshold", type=float, help="yes/no judge: unsafe when P(yes)/(P(yes)+P(no)) "
                                                         "reaches this (default 0.32)")


def run(args: argparse.Namespace) -> int:
    """Measure each judge on each set; print the table, write agreement.json/.md with --output."""
    from pathlib import Path

    from buckle.core.catalog.assets import cache_dir, fetch
    from buckle.core.config import load_config, read_yaml
    from buckle.eval.agreement import markdown_table, measure, parse_sets, write_results
    from buckle.eval.config import EvalConfig
    from buckle.eval.run import build_judges, resolve_judge_names

    sets = parse_sets(args.sets)
    data = read_yaml(args.config) if args.config else {}
    data.update({key: getattr(args, dest) for dest, key in SETTINGS.items() if getattr(args, dest)})
    kinds = [k.strip() for k in args.judge.split(",") if k.strip()]
    # an EvalConfig with no run of its own: only its judge keys count here
    data.update(judges=kinds, model="none", output=args.output or ".", benchmark="none")
    judges = build_judges(load_config(EvalConfig, None, resolve_judge_names(data)))
    cache = Path(args.cache) if args.cache else cache_dir()
    results = measure(judges, fetch("pyrit-scorer-evals"), sets, cache, args.limit, args.model_limit,
                      args.balanced, args.seed)
    if args.output:
        write_results(args.output, results)
    print(markdown_table(results), end="")
    return 0
