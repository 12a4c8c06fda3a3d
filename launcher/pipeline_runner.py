"""How a pipeline step's `buckle` command runs: a local subprocess, or a job on a cluster profile."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

Runner = Callable[[list[str], Path], None]


def make_runner(profile: str | None) -> Runner:
    """A runner for the given cluster profile; None runs steps here."""
    if profile is None:
        return run_local
    return lambda argv, log: run_on_profile(profile, argv, log)


def run_local(argv: list[str], log: Path) -> None:
    """Run `buckle ARGV` in a child process, output to `log`; a failure names the log."""
    cmd = [sys.executable, "-m", "launcher.cli", *argv]
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ buckle " + " ".join(argv) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"step `buckle {argv[0]}` failed (exit {proc.returncode}); log: {log}; "
                           + " | ".join(tail))


def run_on_profile(profile: str, argv: list[str], log: Path) -> None:
    """Submit `buckle ARGV` to a cluster profile and wait for it to finish."""
    raise NotImplementedError("cluster profiles for pipeline steps: pending")
