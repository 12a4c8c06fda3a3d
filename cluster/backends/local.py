"""Local backend: the job runs on this machine as a detached process with a log file."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from buckle.cluster.command import single_node_argv
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def render(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> str:
    """The command line that would run, and where."""
    return f"cd {shlex.quote(str(Path(spec.workdir).resolve()))} && {shlex.join(single_node_argv(spec, profile))}\n"


def submit(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> tuple[str, dict, str]:
    """Start the job detached; returns (pid, info, state)."""
    argv = single_node_argv(spec, profile)
    workdir = Path(spec.workdir).resolve()
    if not workdir.is_dir():
        raise FileNotFoundError(f"workdir: '{workdir}' is not a directory")
    log, result = job_dir / "output.log", job_dir / "result.json"
    env = dict(os.environ)  # same user, same machine: the job sees what the submitter sees
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "buckle.cluster.runner", str(result), "--", *argv],
                                cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    info = {"pid": proc.pid, "start_ticks": _start_ticks(proc.pid), "log": str(log),
            "result": str(result), "workdir": str(workdir)}
    return str(proc.pid), info, "RUNNING"


def status(rec) -> str:
    """SUCCEEDED/FAILED/STOPPED from the runner's result file, else RUNNING while it lives."""
    result = Path(rec.info["result"])
    if result.exists():
        data = json.loads(result.read_text())
        if data["stopped"]:
            return "STOPPED"
        return "SUCCEEDED" if data["returncode"] == 0 else "FAILED"
    if _alive(rec.info["pid"], rec.info.get("start_ticks")):
        return "RUNNING"
    if _cancel_marker(rec).exists():  # signalled before the runner could record it
        return "STOPPED"
    return "FAILED"  # the runner died without writing its result (killed hard)


def logs(rec) -> str:
    """The job's combined stdout/stderr so far."""
    path = Path(rec.info["log"])
    return path.read_text(errors="replace") if path.exists() else ""


def cancel(rec) -> None:
    """SIGTERM the job's process group (the runner records STOPPED)."""
    if not _alive(rec.info["pid"], rec.info.get("start_ticks")):
        return
    _cancel_marker(rec).write_text("")
    try:
        os.killpg(rec.info["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass


def _cancel_marker(rec) -> Path:
    return Path(rec.info["result"]).with_name("cancelled")


def _start_ticks(pid: int) -> int | None:
    # the process start time tells our pid apart from a later process reusing it
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, start_ticks: int | None) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    if fields[0] == "Z":
        return False
    return start_ticks is None or int(fields[19]) == start_ticks
