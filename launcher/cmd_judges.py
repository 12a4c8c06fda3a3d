"""`buckle judges check`: each judge's agreement with pyrit's human-labelled evaluation sets."""
from __future__ import annotations

import argparse

HELP = "measure judges against human labels (accuracy, precision, recall, F1, Cohen's kappa)"
KINDS = ("keyword", "yesno", "policy", "strongreject", "classifier")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle judges check` and its flags."""
    sub = p.add_subparsers(dest="judges_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help=HELP, description=HELP)
    c.add_argument("--judge", default="keyword",
                   help=f"comma list of judges: {', '.join(KINDS)} (policy/strongreject need --judge-backend)")
    c.add_argument("--set", dest="sets", default="objective",
                   help="comma list of label sets: objective, refusal, harm, or all")
    c.add_argument("--limit", type=int, help="judge a seeded sample of N rows per set (balanced unless --no-balanced)")
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
    c.add_argument("--yesno-model", help="yes/no judge model (default: the qwen2.5-coder-1.5b-gguf asset)")


def build_judge(kind: str, args: argparse.Namespace):  # -> buckle.eval.judges.base.Judge
    """One judge from its kind and the flags."""
    from buckle.core.catalog.assets import fetch

    if kind == "keyword":
        from buckle.eval.judges.keyword import KeywordJudge

        return KeywordJudge()
    if kind == "yesno":
        from buckle.eval.judges.yesno import YesNoJudge

        return YesNoJudge(args.yesno_model or fetch("qwen2.5-coder-1.5b-gguf"))
    if kind == "classifier":
        from buckle.eval.judges.classifier import ClassifierJudge

        if not args.classifier:
            raise ValueError("--judge classifier needs --classifier")
        return ClassifierJudge(args.classifier)
    if kind in ("policy", "strongreject"):
        from buckle.eval.judges.rubric import RubricJudge, strongreject_prompts

        prompts = strongreject_prompts(fetch("strongreject")) if kind == "strongreject" else None
        return RubricJudge(_backend(args), kind, prompts)
    raise ValueError(f"unknown judge '{kind}'; known: {', '.join(KINDS)}")


def _backend(args: argparse.Namespace):
    if args.judge_backend == "openai":
        from buckle.eval.judges.endpoint import OpenAIBackend

        if not (args.judge_url and args.judge_model):
            raise ValueError("--judge-backend openai needs --judge-url and --judge-model")
        return OpenAIBackend(args.judge_url, args.judge_model, args.judge_api_key_env)
    if args.judge_backend == "hf":
        from buckle.eval.judges.local import HFChatBackend
        from buckle.core.catalog.models import resolve_model

        if not args.judge_model:
            raise ValueError("--judge-backend hf needs --judge-model")
        return HFChatBackend(resolve_model(args.judge_model))
    raise ValueError("rubric judges (policy, strongreject) need --judge-backend openai or hf")


def run(args: argparse.Namespace) -> int:
    """Measure each judge on each set; print the table, write agreement.json/.md with --output."""
    import json
    from pathlib import Path

    from buckle.eval.agreement import SETS, check_judge, markdown_table
    from buckle.core.catalog.assets import cache_dir, fetch

    sets = list(SETS) if args.sets == "all" else [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in SETS]
    if bad:
        raise ValueError(f"unknown label set '{bad[0]}'; known: {', '.join(SETS)}, all")
    kinds = [k.strip() for k in args.judge.split(",") if k.strip()]
    judges = [build_judge(k, args) for k in kinds]
    folder = fetch("pyrit-scorer-evals")
    cache = Path(args.cache) if args.cache else cache_dir()
    results = [check_judge(j, folder, s, cache, args.limit, args.balanced, args.seed) for j in judges for s in sets]
    table = markdown_table(results)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        slim = [{k: v for k, v in r.items() if k != "verdicts"} for r in results]
        (out / "agreement.json").write_text(json.dumps({"results": slim}, indent=1), encoding="utf-8")
        (out / "agreement_verdicts.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        (out / "agreement.md").write_text("# Judge agreement with human labels\n\n" + table, encoding="utf-8")
    print(table, end="")
    return 0
