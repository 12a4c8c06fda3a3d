"""What each pipeline step asks of the machines, and how a profile's site defaults fill it in.

A plan node declares its needs (`Needs`): a training asks for ranks over nodes,
a Ray curation for a cluster and its one driver, every other step for one
process (with its engine's GPUs where it holds one). `place` lays the config's
`resources:` keys and the profile's defaults over them, so a step runs as N
copies only when it is a distributed training.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from buckle.cluster.profiles import Defaults, Profile
from buckle.core.config import ConfigError
from buckle.launcher.pipeline.config import CurateSection, EvalSection, ResourcesSpec, StageSpec

TRAIN, RAY, TASK = "train", "ray", "task"  # distributed ranks; a Ray cluster and its driver; one process
REMOTE_ENGINES = ("openai", "server")  # served elsewhere: the step itself holds no GPU


@dataclass(frozen=True)
class Needs:
    """What a plan node asks for before a profile fills in the rest.

    Attributes:
        kind: TRAIN, RAY or TASK.
        engine_gpus: GPUs one inference engine holds (tensor x pipeline parallel); 0: none.
        workers: engines a Ray curation runs at once (num_workers).
        given: the config's `resources:` keys for this step.
        where: where those keys sit in the config (named by errors), e.g. `stages.attack.resources`.
    """

    kind: str
    engine_gpus: int = 0
    workers: int = 1
    given: ResourcesSpec = field(default_factory=ResourcesSpec)
    where: str = "resources"


CPU_TASK = Needs(TASK)  # contamination, judges, report: one process, no GPU


def train_needs(stage: str, spec: Optional[StageSpec]) -> Needs:
    """A training stage: ranks over nodes, as its stage entry's `resources` say (no entry: the defaults;
    validate_sections names a missing stage before anything runs)."""
    return Needs(TRAIN, given=spec.resources if spec else ResourcesSpec(), where=f"stages.{stage}.resources")


def _engine_gpus(section: CurateSection | EvalSection) -> int:
    if section.engine in REMOTE_ENGINES:
        return 0
    return section.tensor_parallel_size * section.pipeline_parallel_size


def curate_needs(section: CurateSection) -> Needs:
    """Curation: a Ray cluster of num_workers engines with executor ray, else one process."""
    ray = section.executor == "ray"
    return Needs(RAY if ray else TASK, _engine_gpus(section), section.num_workers if ray else 1,
                 section.resources, "curate.resources")


def eval_needs(section: EvalSection) -> Needs:
    """An evaluation: one process on one node, with its engine's GPUs."""
    return Needs(TASK, _engine_gpus(section), 1, section.resources, "eval.resources")


@dataclass(frozen=True)
class Placement:
    """Where a step runs: the shape of its job.

    Attributes:
        kind: TRAIN, RAY or TASK (from the step's needs).
        nodes: machines the job spans.
        gpus_per_node: GPUs asked for on each.
        processes_per_node: a training's ranks per node (one per GPU, else tasks_per_node); 1 otherwise.
        launcher: torchrun or deepspeed for a training of several ranks; none: the command runs once.
        ray_cluster: the command is the driver of a Ray cluster over the job's nodes.
        cpus_per_task, time: the profile's defaults unless the step's resources say otherwise.
    """

    kind: str
    nodes: int = 1
    gpus_per_node: int = 0
    processes_per_node: int = 1
    launcher: str = "none"
    ray_cluster: bool = False
    cpus_per_task: int = 1
    time: Optional[str] = None

    @property
    def processes(self) -> int:
        """How many copies of the command run: a training's ranks, else one."""
        return self.nodes * self.processes_per_node if self.kind == TRAIN else 1

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the process count."""
        return {**asdict(self), "processes": self.processes}


def place(needs: Needs, profile: Optional[Profile]) -> Placement:
    """The placement of a step on a profile (None: here, one machine).

    Raises:
        ConfigError: the resources cannot hold the step or need a cluster; the message names the key.
    """
    site, given = (profile.defaults if profile else Defaults()), needs.given
    gpus = site.gpus_per_node if given.gpus_per_node is None else given.gpus_per_node
    common = {"cpus_per_task": given.cpus_per_task or site.cpus_per_task, "time": given.time or site.time}
    if needs.kind == TRAIN:
        nodes = given.nodes or site.nodes
        per_node = gpus or given.tasks_per_node or site.tasks_per_node
        launcher = (given.launcher or "torchrun") if nodes * per_node > 1 else "none"
        placed = Placement(TRAIN, nodes, gpus, per_node, launcher, **common)
    elif needs.kind == RAY:
        placed = Placement(RAY, *_ray_shape(needs, gpus, site), ray_cluster=True, **common)
    else:
        if (given.nodes or 1) > 1:
            raise ConfigError(f"config error: {needs.where}.nodes: this step runs once on one node "
                              "(a curation spans nodes with executor ray)")
        engine = needs.engine_gpus if site.gpus_per_node else 0  # a CPU site runs the engine on CPU
        task_gpus = engine if given.gpus_per_node is None else given.gpus_per_node
        if task_gpus < engine:
            raise ConfigError(f"config error: {needs.where}.gpus_per_node: {task_gpus} GPUs cannot hold an "
                              f"engine of tensor_parallel_size x pipeline_parallel_size = {engine}")
        placed = Placement(TASK, 1, task_gpus, **common)
    if placed.nodes > 1 and (profile is None or profile.backend == "local"):
        raise ConfigError(f"config error: {needs.where}.nodes: {placed.nodes} nodes need a cluster profile "
                          "(--profile, Slurm or Ray); here the step runs on one machine")
    return placed


def _ray_shape(needs: Needs, gpus: int, site: Defaults) -> tuple[int, int]:
    """(nodes, GPUs per node) of a Ray curation: whole nodes enough for its engines, or the site's nodes on CPU."""
    if not gpus:
        return needs.given.nodes or site.nodes, 0
    if needs.engine_gpus > gpus:
        raise ConfigError(f"config error: curate.tensor_parallel_size: an engine of {needs.engine_gpus} GPUs "
                          f"(tensor x pipeline parallel) does not fit a node of {gpus}")
    total = needs.workers * needs.engine_gpus
    nodes = needs.given.nodes or max(1, math.ceil(total / gpus))
    if nodes * gpus < total:
        raise ConfigError(f"config error: {needs.where}.nodes: {nodes} node(s) x {gpus} GPUs hold fewer than "
                          f"num_workers {needs.workers} x {needs.engine_gpus} GPUs per engine")
    return nodes, gpus if nodes > 1 else min(gpus, total)
