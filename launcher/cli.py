"""The `buckle` command: a thin dispatcher. Command modules import heavy libraries lazily."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: the module that implements it and the names of its parts there."""

    name: str
    module: str
    add: str = "add_arguments"  # add(parser) registers the flags
    run: str = "run"  # run(args) -> exit code
    help: str = "HELP"  # one line for `buckle --help`


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless it is None or a switch's False (nothing worth saying)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class CommandError(ImportError):
    """A registered command's module cannot be imported or lacks a part; names the module."""


_JOBS = "buckle.launcher.cmd_jobs"
# The registry: every command is listed here, and one that fails to load is an error, not a gap.
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("curate", "buckle.launcher.cmd_curate"),
    Command("score", "buckle.launcher.cmd_score"),
    Command("train", "buckle.launcher.cmd_train"),
    Command("plan", "buckle.launcher.cmd_plan"),
    Command("eval", "buckle.launcher.cmd_eval"),
    Command("judges", "buckle.launcher.cmd_judges"),
    Command("contamination", "buckle.launcher.cmd_contamination"),
    Command("report", "buckle.launcher.cmd_report"),
    Command("data", "buckle.launcher.cmd_data"),
    Command("pipeline", "buckle.launcher.cmd_pipeline"),
    Command("submit", "buckle.launcher.cmd_submit"),
    Command("jobs", _JOBS, "add_jobs_arguments", "run_jobs", "HELP_JOBS"),
    Command("status", _JOBS, "add_status_arguments", "run_status", "HELP_STATUS"),
    Command("logs", _JOBS, "add_logs_arguments", "run_logs", "HELP_LOGS"),
    Command("cancel", _JOBS, "add_cancel_arguments", "run_cancel", "HELP_CANCEL"),
)}


def load_command(command: Command) -> tuple:
    """The command's (add, run, help) from its module.

    Raises:
        CommandError: the module fails to import or lacks one of the three; the message names it.
    """
    try:
        module = importlib.import_module(command.module)
    except Exception as exc:
        raise CommandError(f"command '{command.name}': module {command.module} failed to import: "
                           f"{type(exc).__name__}: {exc}") from exc
    missing = [attr for attr in (command.add, command.run, command.help) if not hasattr(module, attr)]
    if missing:
        raise CommandError(f"command '{command.name}': module {command.module} has no {missing[0]}")
    return getattr(module, command.add), getattr(module, command.run), getattr(module, command.help)


def build_parser(commands: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command.

    Raises:
        CommandError: a registered command cannot be loaded.
    """
    parser = argparse.ArgumentParser(
        prog="buckle",
        description="Harden LLMs against fine-tuning jailbreaks with curated data.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in (COMMANDS if commands is None else commands).items():
        add, run, helptext = load_command(command)
        p = sub.add_parser(name, help=helptext, description=helptext,
                           formatter_class=HelpFormatter)
        add(p)
        p.set_defaults(_run=run, _name=name)
    return parser


def main(argv: list[str] | None = None, commands: dict[str, Command] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        parser = build_parser(commands)
    except CommandError as exc:  # a broken install or a typo in the registry: say which module
        if os.environ.get("BUCKLE_DEBUG") == "1":
            raise
        print(f"buckle: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("BUCKLE_DEBUG") == "1"
    try:
        return int(args._run(args) or 0)
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
