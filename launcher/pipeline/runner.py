"""How a pipeline step's `buckle` command runs: a local subprocess, or a job on a cluster profile."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobRecord
from buckle.cluster.profiles import load_profile
from buckle.cluster.states import run_job, succeeded
from buckle.launcher.pipeline.progress import PRINT_EVERY_S, StepProgress

Runner = Callable[..., None]  # run(argv, log_path, label)
# Tells a step's command that its log is read for progress: write bars even off a terminal.
PROGRESS_ENV = "BUCKLE_PROGRESS"


def make_runner(profile: str | None) -> Runner:
    """A runner for the given cluster profile; None runs steps here."""
    if profile is None:
        return run_local
    return lambda argv, log, label="": run_on_profile(profile, argv, log)


def run_local(argv: list[str], log: Path, label: str = "") -> None:
    """Run `buckle ARGV` in a child process, output to `log`, its progress shown under `label`.

    Raises:
        RuntimeError: the command failed; names the log and quotes its last lines.
    """
    cmd = [sys.executable, "-m", "buckle.launcher.cli", *argv]
    code = run_command(cmd, log, label or argv[0], header="$ buckle " + " ".join(argv))
    if code != 0:
        text = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
        tail = [line.strip() for line in text.splitlines() if line.strip()][-3:]
        raise RuntimeError(f"step `buckle {argv[0]}` failed (exit {code}); log: {log}; " + " | ".join(tail))


def run_command(cmd: list[str], log: Path, label: str, header: str | None = None,
                stream: TextIO | None = None, every_s: float = PRINT_EVERY_S, poll_s: float = 0.5) -> int:
    """Run `cmd` with all its output appended to `log`, showing its progress meanwhile.

    Args:
        cmd: the command line.
        log: the log file; it receives everything the command prints.
        label: what the progress line starts with, e.g. `[3/14] align`.
        header: a first line for the log.
        stream: where progress shows (default: stdout).
        every_s: off a terminal, the least time between two progress lines.
        poll_s: how often the log is read.
    Returns:
        The command's exit code.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", PROGRESS_ENV: "1"}
    with open(log, "ab") as fh:
        if header:
            fh.write((header + "\n").encode())
            fh.flush()
        start = fh.tell()
        with StepProgress(label, stream, every_s) as view, open(log, "rb") as reader:
            reader.seek(start)
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
            try:
                while True:
                    ended = proc.poll() is not None  # polled before the read, so the read sees the last bytes
                    view.feed(reader.read())
                    if ended:
                        return proc.returncode
                    time.sleep(poll_s)
            finally:
                if proc.poll() is None:  # interrupted here: do not leave the step running
                    proc.kill()
                    proc.wait()


def run_on_profile(profile: str, argv: list[str], log: Path, poll_s: float = 5.0) -> None:
    """Submit `buckle ARGV` as a job on a cluster profile, wait for it, keep its log.

    Raises:
        ValueError: the profile only renders manifests (KubeRay without apply).
        RuntimeError: the job did not succeed; names the job and the log.
    """
    prof = load_profile(profile)
    if prof.backend == "kuberay":
        raise ValueError(f"profile '{profile}' only renders manifests; pipeline steps need a backend that runs jobs")
    spec = jobs.build_spec(prof, ["buckle", *argv], name=f"buckle-{argv[0]}", workdir=os.getcwd())

    def header(rec: JobRecord) -> None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ buckle {' '.join(argv)}  [job {rec.id} on {prof.name}]\n")
    rec, state, output = run_job(spec, prof, poll_s, on_submit=header)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(output)
    if not succeeded(state):
        raise RuntimeError(f"step `buckle {argv[0]}` ended {state} as job {rec.id} on profile "
                           f"'{prof.name}'; log: {log}")
