"""`buckle pipeline`: curate -> contamination -> align -> attack -> defenses and their uncurated twins
-> evaluate -> report; or, for a config with `sweep:`, every variant on the dev split and the levers table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = ("run every defense stage end to end and report whether it worked; each step is cached "
        "by a hash of its inputs and config, so a rerun redoes only what changed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle pipeline` flags."""
    p.add_argument("--config", default="quickstart",
                   help="shipped pipeline name (quickstart, quickstart-full, paper-8b, sweep-dev) or a YAML file")
    p.add_argument("--output", help="pipeline directory (default: runs/<name>)")
    p.add_argument("--profile", help="cluster profile to submit each step to (default: run here)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and print the job plan (each step's nodes, GPUs, processes, launcher, command "
                        "and memory verdict on the profile), run nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the job plan as JSON")
    p.add_argument("--prune", action="store_true", help="delete step outputs the config no longer uses")


def run(args: argparse.Namespace) -> int:
    """Run `buckle pipeline`."""
    from buckle.core.config import load_config
    from buckle.core.manifest import RunDir
    from buckle.launcher.pipeline.build import run_pipeline
    from buckle.launcher.pipeline.config import PipelineConfig, resolve, validate_sections
    from buckle.launcher.pipeline.jobplan import format_plan, job_plan
    from buckle.launcher.pipeline.report import write_report
    from buckle.launcher.pipeline.runner import make_runner
    from buckle.launcher.pipeline.steps import prune
    from buckle.launcher.pipeline.sweep import run_sweep, variants

    if args.json and not args.dry_run:
        raise ValueError("--json: prints the job plan, so it goes with --dry-run")
    path = resolve(args.config)
    cfg = load_config(PipelineConfig, path, {"profile": args.profile})
    validate_sections(cfg)
    root = Path(args.output or f"runs/{cfg.name}")
    runner = make_runner(cfg.profile)
    if cfg.sweep:  # a dev-split sweep: every variant, then the levers table
        if args.dry_run:
            names = [name for name, _ in variants(cfg)]
            print(json.dumps({"variants": names}, indent=2) if args.json else "\n".join(names))
            return 0
        run_sweep(cfg, root, runner)
        print((root / "levers.md").read_text(encoding="utf-8"))
        return 0
    if args.dry_run:
        plan = job_plan(cfg, root)
        print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
        return 0
    run_dir = RunDir(root, "pipeline", cfg.model_dump())
    plan, results = run_pipeline(cfg, root, runner)
    paths = write_report(root, plan, results, cfg.report_pairs)
    if args.prune:
        prune(root, results)
    ran = [n for n, r in results.items() if not r.cached]
    run_dir.finish(counts={"steps": len(results), "ran": len(ran), "cached": len(results) - len(ran)},
                   timings={n: r.wall_s for n, r in results.items()}, ran=ran)
    print((root / "report.md").read_text(encoding="utf-8"))
    print(f"report: {paths['markdown']} and {paths['html']}")
    return 0
