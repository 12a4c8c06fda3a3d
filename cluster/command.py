"""The job's argv on the run side: the buckle check, the executable, the process launcher."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec

RAY_BACKENDS = ("ray", "kuberay")


def buckle_executable(profile: Profile) -> str:
    """The buckle to run: the profile's, else the one next to this Python (the venv's)."""
    if profile.executable:
        return profile.executable
    sibling = Path(sys.executable).with_name("buckle")
    if sibling.exists():
        return str(sibling)
    return shutil.which("buckle") or "buckle"


def check_command(command: list[str], profile: Profile) -> None:
    """Refuse a command that is not `buckle ...` unless the profile allows any command."""
    if not command:
        raise ValueError("no command given after `--` (e.g. `-- buckle data list`)")
    if command[0] != "buckle" and not profile.allow_any_command:
        raise ValueError(f"profile '{profile.name}' runs only buckle commands, got '{command[0]}' "
                         "(write `-- buckle <subcommand> ...`, or set allow_any_command: true in the profile)")


def job_argv(spec: JobSpec, profile: Profile) -> list[str]:
    """The command with a leading `buckle` replaced by the run side's executable."""
    check_command(spec.command, profile)
    if spec.command[0] == "buckle":
        return [buckle_executable(profile), *spec.command[1:]]
    return list(spec.command)


def tool(profile: Profile, name: str) -> str:
    """A launcher tool (torchrun, deepspeed) from the same bin dir as buckle, if it is absolute."""
    exe = Path(buckle_executable(profile))
    return str(exe.with_name(name)) if exe.is_absolute() and exe.with_name(name).exists() else name


def single_node_argv(spec: JobSpec, profile: Profile, master_port: int = 29500) -> list[str]:
    """argv for backends that start the job on one machine (local, Ray entrypoint).

    Several processes on that machine come from torchrun (--standalone) or the
    DeepSpeed launcher; srun and multi-node need a scheduler that places nodes. On a
    Ray cluster the entrypoint is one process on one machine too: a command that uses
    the cluster itself (`buckle curate`, Ray Train) spreads out on its own.
    """
    argv = job_argv(spec, profile)
    if spec.nodes > 1 and profile.backend not in RAY_BACKENDS:
        raise ValueError(f"nodes: {spec.nodes} needs a Slurm, Ray or KubeRay profile; backend "
                         f"'{profile.backend}' starts the job on one machine")
    launcher = spec.resolved_launcher()
    if launcher == "none":
        return argv
    if launcher == "torchrun":
        return [tool(profile, "torchrun"), "--standalone", "--nnodes=1",
                f"--nproc-per-node={spec.procs_per_node}", "--no-python", *argv]
    if launcher == "deepspeed":
        return [tool(profile, "deepspeed"), f"--num_gpus={spec.procs_per_node}",
                f"--master_port={master_port}", "--no_python", *argv]
    raise ValueError(f"launcher: 'srun' needs a Slurm profile, not backend '{profile.backend}'")


def is_ray_train(spec: JobSpec, profile: Profile) -> bool:
    """Whether the job is `buckle train` on a Ray cluster (it then runs as a Ray Train job)."""
    return profile.backend in RAY_BACKENDS and spec.command[:2] == ["buckle", "train"]


def ray_entry_argv(spec: JobSpec, profile: Profile) -> list[str]:
    """argv of a Ray job's entrypoint.

    `buckle train` becomes a Ray Train job: the entrypoint is its driver, and Ray
    Train places one worker per GPU (or `tasks_per_node` per node) over `nodes`
    machines, so no torchrun wraps it. Other commands run as on one machine.
    """
    if not is_ray_train(spec, profile):
        return single_node_argv(spec, profile)
    workers = spec.nodes * spec.procs_per_node
    return [*job_argv(spec, profile), "--executor", "ray", "--nodes", str(spec.nodes), "--nproc", str(workers)]
