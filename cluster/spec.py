"""JobSpec: what to run and with how much, independent of where it runs."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

LAUNCHERS = ("auto", "none", "srun", "torchrun", "deepspeed")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass
class JobSpec:
    """One job: a command plus the resources it asks for.

    Attributes:
        command: the job's argv, e.g. ["buckle", "train", "--config", "x.yaml"].
        name: a short job name (letters, digits, `.`, `_`, `-`).
        nodes: machines the job spans.
        gpus_per_node: GPUs asked for on each node (0 on CPU).
        tasks_per_node: processes per node when there are no GPUs to count them by.
        cpus_per_task: CPUs per process.
        time: wall-clock limit ("90", "90m", "2h", "1:30:00", "1-00:00:00"); None = backend default.
        env: NAMES of environment variables handed to the job from the submitter's
            environment; their values are never stored or rendered.
        workdir: directory the job runs in.
        launcher: how processes are started (auto, none, srun, torchrun, deepspeed).
        ray_cluster: the command drives a Ray cluster over the job's nodes, so it runs once (launcher none).
    """

    command: list[str]
    name: str = "buckle"
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    time: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str = "."
    launcher: str = "auto"
    ray_cluster: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if not self.command:
            raise ValueError("command: empty; give the job's command after `--`")
        if not _JOB_NAME.match(self.name):
            raise ValueError(f"name: '{self.name}' must be 1-63 letters, digits, '.', '_' or '-'")
        for key in ("nodes", "tasks_per_node", "cpus_per_task"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node: must be 0 or more, got {self.gpus_per_node}")
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher: '{self.launcher}' is not one of {', '.join(LAUNCHERS)}")
        if self.ray_cluster and self.launcher not in ("auto", "none"):
            raise ValueError(f"launcher: '{self.launcher}' with ray_cluster; a Ray driver runs once (none)")
        for name in self.env:
            check_env_name(name)
        if self.time is not None:
            time_seconds(self.time)

    @property
    def procs_per_node(self) -> int:
        """Processes per node: one per GPU, else tasks_per_node."""
        return self.gpus_per_node or self.tasks_per_node

    @property
    def processes(self) -> int:
        """How many copies of the command the job runs: one without a launcher, else one per GPU/task."""
        return 1 if self.resolved_launcher() == "none" else self.nodes * self.procs_per_node

    def resolved_launcher(self) -> str:
        """The launcher `auto` stands for: none for one process or a Ray driver, else torchrun."""
        if self.launcher != "auto":
            return self.launcher
        return "none" if self.ray_cluster or self.nodes * self.procs_per_node == 1 else "torchrun"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for job records (env holds names only)."""
        return asdict(self)


def check_env_name(name: str) -> None:
    """Accept an environment variable NAME; refuse NAME=value with the reason."""
    if "=" in name:
        raise ValueError(f"env: pass '{name.split('=')[0]}' by name only (--env NAME); "
                         "its value is read from your environment so it never lands in a file")
    if not _ENV_NAME.match(name):
        raise ValueError(f"env: '{name}' is not a valid environment variable name")


def time_seconds(value: str) -> int:
    """Seconds of a time limit: "90" (minutes), "90m", "2h", "MM:SS", "H:MM:SS", "D-H:MM:SS"."""
    text = str(value).strip()
    try:
        if text[-1:] in ("s", "m", "h", "d") and text[:-1].isdigit():
            return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[text[-1]]
        days = 0
        if "-" in text:
            d, text = text.split("-", 1)
            days = int(d)
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1 and not days:
            secs = parts[0] * 60
        elif len(parts) == 1:
            secs = parts[0] * 3600
        elif len(parts) == 2:
            secs = parts[0] * 60 + parts[1] if not days else parts[0] * 3600 + parts[1] * 60
        elif len(parts) == 3:
            secs = parts[0] * 3600 + parts[1] * 60 + parts[2]
        else:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"time: '{value}' is not a time limit (e.g. 90m, 2h, 1:30:00, 1-00:00:00)") from None
    if secs + days * 86400 <= 0:
        raise ValueError(f"time: '{value}' must be positive")
    return secs + days * 86400


def slurm_time(value: str) -> str:
    """A time limit in Slurm's D-HH:MM:SS form."""
    secs = time_seconds(value)
    days, rest = divmod(secs, 86400)
    return f"{days}-{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
