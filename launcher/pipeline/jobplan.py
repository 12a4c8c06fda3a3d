"""The job plan of a pipeline, run nowhere: `buckle pipeline --dry-run [--json]`.

Every step with its placement (nodes, GPUs per node, processes, launcher, a Ray
cluster or not), the exact command each of its processes runs, the job a profile
would be sent, and for trainings and engine steps `buckle plan`'s memory verdict.
Step directories are named by the keys a real run would compute, so the commands
are the ones that run; nothing is written.
"""
from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path
from typing import Any, Optional

from buckle.cluster.command import is_ray_train
from buckle.cluster.profiles import Profile, load_profile
from buckle.launcher.pipeline.build import build_steps
from buckle.launcher.pipeline.config import PipelineConfig
from buckle.launcher.pipeline.memory import DEFAULT_GPU_MEMORY, Archs, engine_verdict, summary, train_verdict
from buckle.launcher.pipeline.plan import CurateNode, EvalNode, Node, TrainNode, build_plan
from buckle.launcher.pipeline.resources import Placement
from buckle.launcher.pipeline.runner import job_spec, local_argv
from buckle.launcher.pipeline.steps import Step, StepContext, predict
from buckle.train.plan import architecture, parse_size


def _not_run(*_: Any, **__: Any) -> None:
    raise RuntimeError("a dry run runs no step")


def job_plan(cfg: PipelineConfig, root: Path) -> dict[str, Any]:
    """The pipeline's steps in run order as they would run under `root` on the config's profile.

    Returns:
        {pipeline, profile, backend, gpu_memory, gpu_memory_from, node_memory, verdicts: {fit, do_not_fit,
        not_planned}, fits (no verdict says no), steps: [{name, kind, nodes, gpus_per_node, processes_per_node,
        processes, launcher, ray_cluster, cpus_per_task, time, deps, command, job, memory}]}.
    """
    profile = load_profile(cfg.profile) if cfg.profile else None
    plan = build_plan(cfg)
    nodes = {n.name: n for n in plan.nodes}
    given = profile.gpu_memory if profile else None
    gpu_memory = given or DEFAULT_GPU_MEMORY
    node_memory = profile.node_memory if profile else None
    sizes = (parse_size(gpu_memory), parse_size(node_memory) if node_memory else None)
    archs = cache(architecture)
    steps = [_entry(cfg, step, ctx, nodes[step.name], profile, archs, sizes)
             for step, ctx in predict(build_steps(cfg, _not_run, plan), root)]
    said = [s["memory"]["fits"] for s in steps if s["memory"]]
    verdicts = {"fit": said.count(True), "do_not_fit": said.count(False), "not_planned": said.count(None)}
    return {"pipeline": cfg.name, "profile": profile.name if profile else None,
            "backend": profile.backend if profile else "here", "gpu_memory": gpu_memory,
            "gpu_memory_from": "profile" if given else "default", "node_memory": node_memory,
            "verdicts": verdicts, "fits": not verdicts["do_not_fit"], "steps": steps}


def _entry(cfg: PipelineConfig, step: Step, ctx: StepContext, node: Node, profile: Optional[Profile],
           archs: Archs, sizes: tuple[float, Optional[float]]) -> dict[str, Any]:
    at: Placement = step.placement
    argv = step.command(ctx)
    launcher, job = at.launcher, None
    if profile is None:
        command = ["buckle", *local_argv(argv, at)]
    else:
        spec = job_spec(profile, argv, at)
        command, job = spec.command, spec.to_dict()
        launcher = "ray-train" if is_ray_train(spec, profile) else launcher  # Ray Train places the ranks
    return {"name": step.name, **at.to_dict(), "launcher": launcher, "deps": step.deps,
            "command": shlex.join(command), "job": job, "memory": _memory(cfg, step, node, archs, sizes)}


def _memory(cfg: PipelineConfig, step: Step, node: Node, archs: Archs,
            sizes: tuple[float, Optional[float]]) -> Optional[dict[str, Any]]:
    """The verdict of a training or engine step that holds GPUs; None for the others."""
    at: Placement = step.placement
    if not at.gpus_per_node or not isinstance(node, (TrainNode, CurateNode, EvalNode)):
        return None
    try:
        if isinstance(node, TrainNode):
            return train_verdict(archs(cfg.model), step.params["recipe"], at, *sizes)
        if isinstance(node, CurateNode):
            conf = step.params["config"]
            models = [cfg.model] + ([conf["reviser"]] if conf["reviser"] not in (None, cfg.model) else [])
            return engine_verdict(archs, models, "curate", conf, sizes[0])
        return engine_verdict(archs, [cfg.model], "eval", step.params["eval"], sizes[0])
    except ValueError as exc:  # a model the planner cannot read offline: say so, do not guess
        return {"fits": None, "note": f"not planned: {exc}"}


def format_plan(job: dict[str, Any]) -> str:
    """The job plan as text: a header, then per step its shape, memory verdict and command."""
    where = f"{job['profile']} ({job['backend']})" if job["profile"] else "here (no profile)"
    gpu = job["gpu_memory"] + ("" if job["gpu_memory_from"] == "profile" else " (buckle plan's default)")
    lines = [f"{job['pipeline']} on {where}: {len(job['steps'])} steps; GPU memory {gpu}, "
             f"node memory {job['node_memory'] or 'not given'}; memory verdicts: "
             + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in job["verdicts"].items())
             + ("" if job["fits"] else " (SOME DO NOT FIT)")]
    width = max((len(s["name"]) for s in job["steps"]), default=0)
    for s in job["steps"]:
        shape = (f"{s['kind']:5s} {s['nodes']} node(s) x {s['gpus_per_node']} GPU(s), {s['processes']} "
                 f"process(es), launcher {s['launcher']}" + (", Ray cluster" if s["ray_cluster"] else ""))
        lines.append(f"{s['name']:{width}s}  {shape}; memory: {summary(s['memory'])}")
        lines.append(f"{'':{width}s}  $ {s['command']}")
    return "\n".join(lines)
