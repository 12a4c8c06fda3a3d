"""The `buckle` command: a thin dispatcher. Command modules import heavy libraries lazily."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> module with HELP, add_arguments(parser) and run(args) -> int
COMMANDS = {
    "curate": "buckle.launcher.cmd_curate",
    "score": "buckle.launcher.cmd_score",
    "train": "buckle.launcher.cmd_train",
    "plan": "buckle.launcher.cmd_plan",
    "eval": "buckle.launcher.cmd_eval",
    "report": "buckle.launcher.cmd_report",
    "data": "buckle.launcher.cmd_data",
    "pipeline": "buckle.launcher.cmd_pipeline",
    "submit": "buckle.launcher.cmd_submit",
    "jobs": "buckle.launcher.cmd_jobs",
    "status": "buckle.launcher.cmd_jobs",
    "logs": "buckle.launcher.cmd_jobs",
    "cancel": "buckle.launcher.cmd_jobs",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per available command."""
    parser = argparse.ArgumentParser(
        prog="buckle",
        description="Harden LLMs against fine-tuning jailbreaks with curated data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # command not built yet
        add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        helptext = getattr(module, f"HELP_{name.upper()}", None) or module.HELP
        p = sub.add_parser(name, help=helptext, description=helptext,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add(p)
        p.set_defaults(_module=module, _name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("BUCKLE_DEBUG") == "1"
    module = args._module
    run = getattr(module, f"run_{args._name}", None) or module.run
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("buckle: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        # user-facing failures: one clear line, traceback only on request
        if debug:
            raise
        print(f"buckle {args._name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
