"""How a pipeline step's `buckle` command runs: a local subprocess, or a job on a cluster profile.

A runner is called as run(argv, log, label); the pipeline's own runner (JobRunner) also takes the
step's placement, which `bind` hands it, so a job asks for what its step needs and no more.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TextIO

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobRecord
from buckle.cluster.profiles import Profile, load_profile
from buckle.cluster.spec import JobSpec
from buckle.cluster.states import run_job, succeeded
from buckle.launcher.pipeline.progress import PRINT_EVERY_S, StepProgress
from buckle.launcher.pipeline.resources import CPU_TASK, TRAIN, Placement, place

Runner = Callable[..., None]  # run(argv, log_path, label)
# Tells a step's command that its log is read for progress: write bars even off a terminal.
PROGRESS_ENV = "BUCKLE_PROGRESS"


class JobRunner:
    """Runs each step's command where its placement says: here (profile None) or as a job on a profile."""

    def __init__(self, profile: str | None = None):
        self.profile = profile

    def __call__(self, argv: list[str], log: Path, label: str = "", placement: Optional[Placement] = None) -> None:
        if self.profile is None:
            run_local(local_argv(argv, placement), log, label)
        else:
            run_on_profile(self.profile, argv, log, placement=placement)


def make_runner(profile: str | None) -> Runner:
    """A runner for the given cluster profile; None runs steps here."""
    return JobRunner(profile)


def bind(run: Runner, placement: Placement) -> Runner:
    """The runner of one step: a JobRunner gets the step's placement; any other callable (a test's fake)
    is called as it is."""
    return functools.partial(run, placement=placement) if isinstance(run, JobRunner) else run


def local_argv(argv: list[str], placement: Optional[Placement]) -> list[str]:
    """A step's argv run here: a training of several ranks starts them with `buckle train`'s own launcher."""
    if placement is None or placement.kind != TRAIN or placement.processes == 1:
        return list(argv)
    return [*argv, "--nproc", str(placement.processes), "--launcher", placement.launcher]


def job_spec(profile: Profile, argv: list[str], placement: Placement) -> JobSpec:
    """The job of one step on a profile: its placement's shape, the profile's site settings (env) around it.

    On a Ray profile the cluster exists already: a Ray step's driver asks it for no GPU.
    """
    driver_only = placement.ray_cluster and profile.backend == "ray"
    return jobs.build_spec(profile, ["buckle", *argv], name=f"buckle-{argv[0]}", workdir=os.getcwd(),
                           nodes=placement.nodes, gpus_per_node=0 if driver_only else placement.gpus_per_node,
                           tasks_per_node=1 if placement.gpus_per_node else placement.processes_per_node,
                           cpus_per_task=placement.cpus_per_task, time=placement.time,
                           launcher=placement.launcher, ray_cluster=placement.ray_cluster)


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


def run_on_profile(profile: str, argv: list[str], log: Path, poll_s: float = 5.0,
                   placement: Optional[Placement] = None) -> None:
    """Submit `buckle ARGV` as a job on a cluster profile, wait for it, keep its log.

    Args:
        placement: the step's nodes, GPUs and processes; None: one process without GPUs.

    Raises:
        ValueError: the profile only renders manifests (KubeRay without apply).
        RuntimeError: the job did not succeed; names the job and the log.
    """
    prof = load_profile(profile)
    if prof.backend == "kuberay":
        raise ValueError(f"profile '{profile}' only renders manifests; pipeline steps need a backend that runs jobs")
    spec = job_spec(prof, argv, placement or place(CPU_TASK, prof))

    def header(rec: JobRecord) -> None:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ buckle {' '.join(argv)}  [job {rec.id} on {prof.name}]\n")
    rec, state, output = run_job(spec, prof, poll_s, on_submit=header)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(output)
    if not succeeded(state):
        raise RuntimeError(f"step `buckle {argv[0]}` ended {state} as job {rec.id} on profile "
                           f"'{prof.name}'; log: {log}")
