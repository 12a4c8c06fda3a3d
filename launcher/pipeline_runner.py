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
    cmd = [sys.executable, "-m", "buckle.launcher.cli", *argv]
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ buckle " + " ".join(argv) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"step `buckle {argv[0]}` failed (exit {proc.returncode}); log: {log}; "
                           + " | ".join(tail))


def run_on_profile(profile: str, argv: list[str], log: Path, poll_s: float = 5.0) -> None:
    """Submit `buckle ARGV` as a job on a cluster profile, wait for it, keep its log."""
    import os

    from buckle.cluster import jobs
    from buckle.cluster.profiles import load_profile

    prof = load_profile(profile)
    if prof.backend == "kuberay":
        raise ValueError(f"profile '{profile}' only renders manifests; pipeline steps need a backend that runs jobs")
    spec = jobs.build_spec(prof, ["buckle", *argv], name=f"buckle-{argv[0]}", workdir=os.getcwd())
    rec = jobs.submit(spec, prof)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ buckle {' '.join(argv)}  [job {rec.id} on {prof.name}]\n")
    state = jobs.wait(rec.id, timeout_s=30 * 24 * 3600, poll_s=poll_s)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(jobs.logs(rec.id))
    if state not in SUCCESS:
        raise RuntimeError(f"step `buckle {argv[0]}` ended {state} as job {rec.id} on profile "
                           f"'{prof.name}'; log: {log}")


SUCCESS = {"SUCCEEDED", "COMPLETED"}
