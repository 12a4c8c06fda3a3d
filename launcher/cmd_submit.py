"""`buckle submit --profile NAME [resources] -- buckle <subcommand ...>`: run a command as a job."""
from __future__ import annotations

import argparse

HELP = "submit a buckle command as a job (local, Ray, Slurm, KubeRay) through a profile"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle submit` flags; the job's command follows `--`."""
    p.add_argument("--profile", required=True,
                   help="profile name (see `buckle jobs --profiles`) or a profile YAML path")
    p.add_argument("--nodes", type=int, help="nodes")
    p.add_argument("--gpus-per-node", type=int, help="GPUs per node")
    p.add_argument("--tasks-per-node", type=int, help="processes per node when there are no GPUs")
    p.add_argument("--cpus-per-task", type=int, help="CPUs per process")
    p.add_argument("--time", help="time limit: 90m, 2h, 1:30:00, 1-00:00:00")
    p.add_argument("--env", action="append", metavar="NAME", default=[],
                   help="pass this environment variable to the job by name (repeatable); "
                        "its value is never written anywhere by buckle")
    p.add_argument("--name", help="job name")
    p.add_argument("--launcher", choices=["auto", "none", "srun", "torchrun", "deepspeed"],
                   help="how processes start: auto = one process, else torchrun")
    p.add_argument("--workdir", help="directory the job runs in")
    p.add_argument("--dry-run", action="store_true",
                   help="print the sbatch script / Ray submission / RayJob manifest; submit nothing")
    p.add_argument("--output", help="also write the rendered script or manifest to this file")
    p.add_argument("job_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="`--` then the job's command, e.g. -- buckle curate --limit 8")


def split_command(raw: list[str]) -> list[str]:
    """The job's command from what follows the flags; `--` is required."""
    if not raw:
        raise ValueError("missing `--` and the job's command (e.g. `-- buckle data list`)")
    if raw[0] != "--":
        raise ValueError(f"missing `--` before the job's command (write `-- {' '.join(raw)}`)")
    if len(raw) == 1:
        raise ValueError("no command after `--` (e.g. `-- buckle data list`)")
    return raw[1:]


def run(args: argparse.Namespace) -> int:
    """Run `buckle submit`."""
    from pathlib import Path

    from buckle.cluster import jobs
    from buckle.cluster.jobdb import JobStore
    from buckle.cluster.profiles import load_profile
    from buckle.launcher.cli import COMMANDS
    from buckle.core.manifest import RunDir

    command = split_command(args.job_command)
    profile = load_profile(args.profile)
    if command[0] == "buckle" and (len(command) < 2 or command[1] not in COMMANDS):
        sub = command[1] if len(command) > 1 else ""
        raise ValueError(f"'buckle {sub}' is not a buckle subcommand (known: {', '.join(COMMANDS)})")
    name = args.name or (f"buckle-{command[1]}" if command[0] == "buckle" else None)
    spec = jobs.build_spec(profile, command, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                           tasks_per_node=args.tasks_per_node, cpus_per_task=args.cpus_per_task,
                           time=args.time, env=args.env, name=name, launcher=args.launcher,
                           workdir=str(Path(args.workdir or ".").resolve()))
    if args.dry_run:
        text = jobs.render(spec, profile)
        print(text, end="")
        if args.output:
            Path(args.output).write_text(text)
        return 0
    store = JobStore()
    job_id = store.new_id()
    run_dir = RunDir(store.job_dir(job_id), "submit", {"profile": profile.name, "spec": spec.to_dict()})
    try:
        rec = jobs.submit(spec, profile, store, job_id=job_id)
    except BaseException as exc:
        run_dir.finish(status="failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    run_dir.finish(counts={"jobs": 1}, backend=rec.backend, backend_id=rec.backend_id)
    for key in ("manifest", "script"):
        if args.output and key in rec.info:
            Path(args.output).write_text(Path(rec.info[key]).read_text())
    print(f"{rec.id} {rec.state} ({rec.backend} {rec.backend_id})")
    for key in ("manifest", "script", "output", "log"):
        if key in rec.info:
            print(f"  {key}: {rec.info[key]}")
    return 0
