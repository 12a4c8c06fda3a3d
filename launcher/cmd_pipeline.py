"""`buckle pipeline`: curate -> contamination -> align -> attack -> defenses and their uncurated twins
-> evaluate -> report; or, for a config with `sweep:`, every variant on the dev split and the levers table."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("run every defense stage end to end and report whether it worked; each step is cached "
        "by a hash of its inputs and config, so a rerun redoes only what changed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle pipeline` flags."""
    p.add_argument("--config", default="quickstart",
                   help="shipped pipeline name (quickstart, quickstart-full, paper-8b, sweep-dev) or a YAML file")
    p.add_argument("--output", help="pipeline directory (default: runs/<name>)")
    p.add_argument("--profile", help="cluster profile to submit each step to (default: run here)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the steps, run nothing")
    p.add_argument("--prune", action="store_true", help="delete step outputs the config no longer uses")


def run(args: argparse.Namespace) -> int:
    """Run `buckle pipeline`."""
    from buckle.launcher.configs import load_config
    from buckle.launcher.pipeline import build_steps, run_pipeline
    from buckle.launcher.pipeline_config import PipelineConfig, resolve, validate_sections
    from buckle.launcher.pipeline_report import write_report
    from buckle.launcher.pipeline_runner import make_runner
    from buckle.launcher.steps import order_steps, prune

    path = resolve(args.config)
    cfg = load_config(PipelineConfig, path, {"profile": args.profile})
    validate_sections(cfg)
    root = Path(args.output or f"runs/{cfg.name}")
    runner = make_runner(cfg.profile)
    if cfg.sweep:  # a dev-split sweep: every variant, then the levers table
        from buckle.launcher.pipeline_sweep import run_sweep, variants

        if args.dry_run:
            for name, _ in variants(cfg):
                print(name)
            return 0
        run_sweep(cfg, root, runner)
        print((root / "levers.md").read_text(encoding="utf-8"))
        return 0
    if args.dry_run:
        for step in order_steps(build_steps(cfg, runner)):
            print(f"{step.name:12s} <- {', '.join(step.deps) or '-'}")
        return 0
    from buckle.launcher.manifest import RunDir

    run_dir = RunDir(root, "pipeline", cfg.model_dump())
    results = run_pipeline(cfg, root, runner)
    paths = write_report(root, results)
    if args.prune:
        prune(root, results)
    ran = [n for n, r in results.items() if not r.cached]
    run_dir.finish(counts={"steps": len(results), "ran": len(ran), "cached": len(results) - len(ran)},
                   timings={n: r.wall_s for n, r in results.items()}, ran=ran)
    print((root / "report.md").read_text(encoding="utf-8"))
    print(f"report: {paths['markdown']} and {paths['html']}")
    return 0
