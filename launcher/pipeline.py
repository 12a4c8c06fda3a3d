"""The every-stage pipeline: each step is an ordinary `buckle` command in its own process.

Steps run here as subprocesses, or on a cluster profile as submitted jobs; either
way a step's outputs land in its content-addressed directory (launcher.steps).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from buckle.launcher.pipeline_config import PipelineConfig, recipe_content, stage_recipe
from buckle.launcher.steps import Step, StepContext, StepResult, run_steps

Runner = Callable[..., None]  # run(argv, log_path, label): `buckle ARGV`, output to the log


def build_steps(cfg: PipelineConfig, run: Runner) -> list[Step]:
    """The pipeline's steps: curate, align, attack, the defenses, their evals, the report."""
    steps = [Step("curate", _curate(run), {"input": cfg.curate_input, "config": _given(cfg.curate),
                                           "model": cfg.model})]
    start = "align" if cfg.align else None
    if cfg.align:
        steps.append(_train_step(cfg, run, "align", "align", None, {}))
    attack_data = {}
    steps.append(_train_step(cfg, run, "attack", "attack", start, attack_data))
    # without an align stage the given model is the aligned starting point
    evals: dict[str, str | None] = {"aligned": start, "attacked": "attack"}
    if cfg.align and cfg.eval_base:
        evals = {"base": None, **evals}
    if "pre" in cfg.defenses:
        steps.append(_train_step(cfg, run, "pre", "pre", start, {"curated": "curate"}))
        steps.append(_train_step(cfg, run, "pre-attack", "attack", "pre", {}))
        evals["pre"] = "pre-attack"
    if "during" in cfg.defenses:
        steps.append(_train_step(cfg, run, "during", "during", start, {"curated": "curate"}))
        evals["during"] = "during"
    if "post" in cfg.defenses:
        steps.append(_train_step(cfg, run, "post", "post", "attack", {"curated": "curate"}))
        evals["post"] = "post"
    for label, model_step in evals.items():
        steps.append(_eval_step(cfg, run, label, model_step))
    steps.append(Step("report", _report(run), {"labels": list(evals)}, [f"eval-{x}" for x in evals]))
    return steps


def run_pipeline(cfg: PipelineConfig, root: Path, run: Runner,
                 log: Callable[[str], None] = print) -> dict[str, StepResult]:
    """Build and run every step under `root`; cached steps are reused."""
    root.mkdir(parents=True, exist_ok=True)
    return run_steps(build_steps(cfg, run), root, log=log)


def model_dir(result: StepResult) -> str:
    """Where a training step saved its Hugging Face model."""
    return str(result.dir / "run" / "model")


def _given(section: Any) -> dict[str, Any]:
    """The keys a section's YAML gave: what a step hashes and passes on (defaults stay the command's)."""
    return section.model_dump(exclude_unset=True)


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _curate(run: Runner) -> Callable[[StepContext], dict]:
    def fn(ctx: StepContext) -> dict:
        conf = _write_yaml(ctx.out / "curate.yaml", {**ctx.params["config"], "model": ctx.params["model"]})
        out = ctx.out / "run"
        run(["curate", "--config", str(conf), "--input", ctx.params["input"], "--output", str(out)],
            ctx.out / "log.txt", ctx.label)
        return _manifest_counts(out)
    return fn


def _train_step(cfg: PipelineConfig, run: Runner, name: str, stage: str, model_from: str | None,
                data_from: dict[str, str]) -> Step:
    deps = ([model_from] if model_from else []) + list(data_from.values())
    params = {"stage": stage, "spec": cfg.stages[stage].model_dump(), "recipe": recipe_content(cfg, stage),
              "base_model": cfg.model, "model_from": model_from, "data_from": data_from}
    if stage == "during":  # its user data is the attack's data: hash the attack recipe too
        params["attack_recipe"] = recipe_content(cfg, "attack")

    def fn(ctx: StepContext) -> dict:
        model = model_dir(ctx.deps[model_from]) if model_from else cfg.model
        sources = {role: str(ctx.deps[dep].dir / "run" / "curated") for role, dep in data_from.items()}
        out = ctx.out / "run"
        if stage == "during":
            attack = stage_recipe(cfg, "attack", model=model, output=str(out), sources={})
            sources["user"] = attack["data"]["harmful"]
        recipe = stage_recipe(cfg, stage, model=model, output=str(out), sources=sources)
        conf = _write_yaml(ctx.out / "recipe.yaml", recipe)
        spec = cfg.stages[stage]
        argv = ["train", "--config", str(conf), "--nproc", str(spec.nproc), "--launcher", spec.launcher]
        argv += ["--resume"] if (out / "checkpoints").exists() else []  # a crashed step continues
        run(argv, ctx.out / "log.txt", ctx.label)
        metrics = json.loads((out / "metrics.json").read_text())
        return {k: metrics.get(k) for k in ("examples", "steps", "tokens", "initial_loss", "final_loss",
                                            "train_s", "tokens_per_s")}
    return Step(name, fn, params, deps)


def _eval_step(cfg: PipelineConfig, run: Runner, label: str, model_from: str | None) -> Step:
    params = {"eval": _given(cfg.eval), "label": label, "model_from": model_from, "base_model": cfg.model}

    def fn(ctx: StepContext) -> dict:
        model = model_dir(ctx.deps[model_from]) if model_from else cfg.model
        conf = _write_yaml(ctx.out / "eval.yaml", ctx.params["eval"])
        out = ctx.out / "run"
        run(["eval", "--config", str(conf), "--model", model, "--output", str(out), "--label", label],
            ctx.out / "log.txt", ctx.label)
        return json.loads((out / "summary.json").read_text())
    return Step(f"eval-{label}", fn, params, [model_from] if model_from else [])


def _report(run: Runner) -> Callable[[StepContext], dict]:
    def fn(ctx: StepContext) -> dict:
        dirs = [str(ctx.deps[f"eval-{x}"].dir / "run") for x in ctx.params["labels"]]
        run(["report", *dirs, "--output", str(ctx.out / "run")], ctx.out / "log.txt", ctx.label)
        return {"runs": len(dirs), "labels": ctx.params["labels"]}
    return fn


def _manifest_counts(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    return json.loads(path.read_text()).get("counts", {}) if path.exists() else {}
