"""Slurm backend: an sbatch script rendered from templates/sbatch.sh.j2, `sbatch --parsable`.

Launchers: `none` runs the command once; `srun` (and `deepspeed`) start one
process per GPU/task with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
set, which torch.distributed and deepspeed.init_distributed read; `torchrun`
starts one torchrun per node that rendezvous at the first node. srun gets
`--export=ALL` because sbatch's --export list would otherwise also limit what
reaches the tasks (MASTER_ADDR included).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from buckle.cluster.backends import slurm_ray
from buckle.cluster.command import job_argv, tool
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec, slurm_time

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "sbatch.sh.j2"
# exports each task's Slurm ids under the names torch.distributed/DeepSpeed read
_RANK_WRAP = ('export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID WORLD_SIZE=$SLURM_NTASKS '
              'NODE_RANK=$SLURM_NODEID; exec "$@"')


def fill(template: str, values: dict[str, object]) -> str:
    """Replace each {{ key }}; an unknown key is an error, not an empty string."""
    def sub(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KeyError(f"template key '{match.group(1)}' has no value")
        return str(values[match.group(1)])
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", sub, template)


def _launch(spec: JobSpec, profile: Profile) -> tuple[str, int]:
    """The launch line and the number of Slurm tasks per node it needs."""
    argv = shlex.join(job_argv(spec, profile))
    launcher, per_node = spec.resolved_launcher(), spec.procs_per_node
    if launcher == "none" and spec.ray_cluster:  # Ray over the allocation, then the command once on it
        return fill(slurm_ray.TEMPLATE.read_text(), slurm_ray.ray_values(spec, profile)) + "\n" + argv, 1
    if launcher == "none":
        return argv, 1
    if launcher in ("srun", "deepspeed"):
        return (f"srun --export=ALL --kill-on-bad-exit=1 --ntasks-per-node={per_node} "
                f"bash -c {shlex.quote(_RANK_WRAP)} buckle-task {argv}"), per_node
    torchrun = shlex.quote(tool(profile, "torchrun"))
    return (f"srun --export=ALL --kill-on-bad-exit=1 --ntasks-per-node=1 {torchrun} --nnodes=$SLURM_JOB_NUM_NODES "
            f"--nproc-per-node={per_node} --rdzv-id=$SLURM_JOB_ID --rdzv-backend=c10d "
            f"--rdzv-endpoint=$MASTER_ADDR:$MASTER_PORT --no-python {argv}"), 1


def output_path(profile: Profile, job_dir: Path) -> str:
    """The job's output file pattern (%j = Slurm job id)."""
    folder = Path(profile.slurm.log_dir).expanduser() if profile.slurm.log_dir else job_dir
    return str(folder / "slurm-%j.out")


def render(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> str:
    """The sbatch script text."""
    opts = profile.slurm
    launch, tasks = _launch(spec, profile)
    # one torchrun per node starts procs_per_node processes: give its task their CPUs
    per_task = spec.procs_per_node if spec.resolved_launcher() == "torchrun" else 1
    cpus = spec.cpus_per_task * per_task
    lines = [f"--gpus-per-node={spec.gpus_per_node}" if spec.gpus_per_node else "",
             f"--time={slurm_time(spec.time)}" if spec.time else "",
             f"--partition={opts.partition}" if opts.partition else "",
             f"--account={opts.account}" if opts.account else "", *opts.sbatch_args]
    export = list(dict.fromkeys([*opts.export_env, *spec.env]))
    return fill(TEMPLATE.read_text(), {
        "job_id": job_id, "name": spec.name, "nodes": spec.nodes, "ntasks_per_node": tasks,
        "cpus_per_task": cpus, "output": output_path(profile, job_dir),
        "workdir": Path(spec.workdir).resolve(), "export": ",".join(export) or "NONE",
        "sbatch_lines": "\n".join(f"#SBATCH {x}" for x in lines if x),
        "setup": "\n".join(opts.setup), "launch": launch})


def _run(args: list[str], conf: str | None) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        raise RuntimeError(f"{args[0]} not found: the Slurm client tools are not installed here")
    env = dict(os.environ)
    if conf:
        env["SLURM_CONF"] = conf
    try:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{args[0]} timed out: is slurmctld reachable?") from None


def _error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def submit(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> tuple[str, dict, str]:
    """Write job.sbatch into the job dir and submit it."""
    script = job_dir / "job.sbatch"
    script.write_text(render(spec, profile, job_id, job_dir))
    proc = _run(["sbatch", "--parsable", str(script)], profile.slurm.conf)
    if proc.returncode != 0:
        raise RuntimeError(f"sbatch failed: {_error(proc)}")
    slurm_id = proc.stdout.strip().split(";")[0]
    info = {"conf": profile.slurm.conf, "script": str(script),
            "output": output_path(profile, job_dir).replace("%j", slurm_id)}
    return slurm_id, info, "PENDING"


def status(rec) -> str:
    """JobState from scontrol, else from sacct (accounting, or the jobcomp file with -c)."""
    conf = rec.info.get("conf")
    proc = _run(["scontrol", "show", "job", "-o", rec.backend_id], conf)
    found = re.search(r"\bJobState=(\S+)", proc.stdout) if proc.returncode == 0 else None
    if found:
        return found.group(1)
    for extra in ([], ["-c"]):  # slurmdbd accounting, then the job completion file
        proc = _run(["sacct", *extra, "-X", "-n", "-P", "-j", rec.backend_id, "-o", "State"], conf)
        states = [ln.split()[0] for ln in proc.stdout.splitlines() if ln.strip()] if proc.returncode == 0 else []
        if states:
            return states[-1]
    raise RuntimeError(f"Slurm no longer reports job {rec.backend_id} (scontrol forgets finished jobs "
                       "after MinJobAge and sacct needs accounting); its output: " + rec.info["output"])


def logs(rec) -> str:
    """The job's output file so far."""
    path = Path(rec.info["output"])
    return path.read_text(errors="replace") if path.exists() else ""


def cancel(rec) -> None:
    """scancel the job."""
    proc = _run(["scancel", rec.backend_id], rec.info.get("conf"))
    if proc.returncode != 0:
        raise RuntimeError(f"scancel failed: {_error(proc)}")
