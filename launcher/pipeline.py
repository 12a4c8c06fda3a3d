"""The every-stage pipeline: each step is an ordinary `buckle` command in its own process.

Steps run here as subprocesses, or on a cluster profile as submitted jobs; either
way a step's outputs land in its content-addressed directory (launcher.steps).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from buckle.launcher.pipeline_checks import PAIR_KEYS, contamination_step, judges_step
from buckle.launcher.pipeline_config import DEFENSES, PipelineConfig, recipe_content, stage_recipe
from buckle.launcher.steps import Step, StepContext, StepResult, run_steps

Runner = Callable[..., None]  # run(argv, log_path, label): `buckle ARGV`, output to the log
# eval keys that only the first benchmark's step carries: benign references and the judge-free harm NLL
BENIGN_KEYS = ("benign", "benign_name", "benign_limit", "harmful_reference", "harmful_reference_name",
               "harmful_reference_limit")


def build_steps(cfg: PipelineConfig, run: Runner) -> list[Step]:
    """The pipeline's steps: curate, the contamination check, align, attack, each defense and its
    uncurated twin (per seed), one eval per model and benchmark, the report."""
    steps = [Step("curate", _curate(run), {"input": cfg.curate_input, "config": _given(cfg.curate),
                                           "model": cfg.model})]
    steps.append(contamination_step(cfg))
    if cfg.judge_agreement:
        steps.append(judges_step(cfg))
    start = "align" if cfg.align else None
    if cfg.align:
        steps.append(_train_step(cfg, run, "align", "align", None, {}))
    steps.append(_train_step(cfg, run, "attack", "attack", start, {}))
    # without an align stage the given model is the aligned starting point
    models: dict[str, str | None] = {"aligned": start, "attacked": "attack"}
    if cfg.align and cfg.eval_base:
        models = {"base": None, **models}
    costs: dict[str, list[str]] = {"base": [], "aligned": ["align"] if cfg.align else [], "attacked": ["attack"]}
    for stage in [d for d in DEFENSES if d in cfg.defenses]:
        for twin in (False, True) if cfg.controls else (False,):
            for suffix, seed in seed_runs(cfg):
                label = defense_label(stage, twin, suffix)
                origin = "attack" if stage == "post" else start  # post restores the attacked model
                steps.append(_train_step(cfg, run, label, stage, origin, {"curated": "curate"}, twin, seed))
                costs[label] = ["curate", label]
                if stage == "pre":  # immunized, then attacked as the user would
                    steps.append(_train_step(cfg, run, f"{label}-attack", "attack", label, {}, seed=seed))
                    costs[label].append(f"{label}-attack")
                models[label] = f"{label}-attack" if stage == "pre" else label
    evals: dict[str, dict[str, str]] = {}
    for label, model_step in models.items():
        evals[label] = {}
        for i, bench in enumerate(benchmarks(cfg)):
            name = f"eval-{label}" if i == 0 else f"eval-{label}-{bench_slug(bench)}"
            steps.append(_eval_step(cfg, run, name, label, model_step, bench, first=i == 0))
            evals[label][bench] = name
    first = [names[benchmarks(cfg)[0]] for names in evals.values()]
    deps = [n for names in evals.values() for n in names.values()] + ["contamination"]
    deps += ["judges"] if cfg.judge_agreement else []
    steps.append(Step("report", _report(run, first), {"labels": list(evals), "evals": evals, "costs": costs,
                                                      "defenses": defense_groups(cfg), "pairs": cfg.report_pairs},
                      deps))
    return steps


def seed_runs(cfg: PipelineConfig) -> list[tuple[str, int | None]]:
    """(step-name suffix, seed) per training run of a defense; one unsuffixed run with no `seeds`."""
    if not cfg.seeds:
        return [("", None)]
    if len(cfg.seeds) == 1:
        return [("", cfg.seeds[0])]
    return [(f"-s{s}", s) for s in cfg.seeds]


def defense_label(stage: str, twin: bool, suffix: str = "") -> str:
    """The step and report name of a defense run, e.g. `post`, `post-uncurated`, `post-uncurated-s1`."""
    return stage + ("-uncurated" if twin else "") + suffix


def defense_groups(cfg: PipelineConfig) -> dict[str, dict[str, list[str]]]:
    """Defense -> {"curated": labels per seed, "uncurated": labels per seed} (empty without controls)."""
    return {d: {"curated": [defense_label(d, False, s) for s, _ in seed_runs(cfg)],
                "uncurated": [defense_label(d, True, s) for s, _ in seed_runs(cfg)] if cfg.controls else []}
            for d in DEFENSES if d in cfg.defenses}


def benchmarks(cfg: PipelineConfig) -> list[str]:
    """The harmful-prompt sets every model is evaluated on: `eval.benchmarks`, else `eval.benchmark`."""
    many = getattr(cfg.eval, "benchmarks", None)
    return list(many) if many else ([cfg.eval.benchmark] if cfg.eval.benchmark else [""])


def bench_slug(bench: str) -> str:
    """A benchmark as a step-name part: its file stem for a path."""
    return Path(bench).stem if ("/" in bench or "." in bench) else bench


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
                data_from: dict[str, str], twin: bool = False, seed: int | None = None) -> Step:
    deps = ([model_from] if model_from else []) + list(data_from.values())
    params = {"stage": stage, "spec": cfg.stages[stage].model_dump(), "recipe": recipe_content(cfg, stage),
              "base_model": cfg.model, "model_from": model_from, "data_from": data_from}
    if twin:  # the same texts as they were before curation: the control
        params["uncurated"] = True
    if seed is not None:
        params["seed"] = seed
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
        if twin:
            recipe["data"]["curated"]["response_column"] = "original"
        if seed is not None:
            recipe["seed"] = seed
            recipe["data"]["seed"] = seed
        conf = _write_yaml(ctx.out / "recipe.yaml", recipe)
        spec = cfg.stages[stage]
        argv = ["train", "--config", str(conf), "--nproc", str(spec.nproc), "--launcher", spec.launcher]
        argv += ["--resume"] if (out / "checkpoints").exists() else []  # a crashed step continues
        run(argv, ctx.out / "log.txt", ctx.label)
        metrics = json.loads((out / "metrics.json").read_text())
        return {k: metrics.get(k) for k in ("examples", "steps", "tokens", "initial_loss", "final_loss",
                                            "train_s", "tokens_per_s")}
    # after the contamination gate, not keyed by it: a change of evaluation sets keeps the trainings
    return Step(name, fn, params, deps, after=["contamination"])


def _eval_step(cfg: PipelineConfig, run: Runner, name: str, label: str, model_from: str | None,
               bench: str, first: bool) -> Step:
    """Evaluate one model on one benchmark (its contamination-clean copy); the first also scores benign
    references and the eval keys beyond the benchmark (e.g. the harmful-reference NLL)."""
    given = {k: v for k, v in _given(cfg.eval).items() if k not in ("benchmarks", "benchmark")}
    if not first:
        given = {k: v for k, v in given.items() if k not in BENIGN_KEYS}
    params = {"eval": given, "benchmark": bench, "label": label, "model_from": model_from,
              "base_model": cfg.model}

    def fn(ctx: StepContext) -> dict:
        model = model_dir(ctx.deps[model_from]) if model_from else cfg.model
        clean = ctx.deps["contamination"].metrics.get("clean", {})
        data = dict(ctx.params["eval"])
        if bench:  # the clean copy holds rows {id, prompt}
            data.update(benchmark=clean.get(bench, bench), benchmark_name=bench, prompt_column="prompt",
                        id_column="id")
        for key in PAIR_KEYS:
            if data.get(key):
                data.update({key: clean.get(data[key], data[key]), f"{key}_name": data[key]})
        conf = _write_yaml(ctx.out / "eval.yaml", data)
        out = ctx.out / "run"
        run(["eval", "--config", str(conf), "--model", model, "--output", str(out), "--label", label],
            ctx.out / "log.txt", ctx.label)
        return json.loads((out / "summary.json").read_text())
    return Step(name, fn, params, ([model_from] if model_from else []) + ["contamination"])


def _report(run: Runner, first: list[str]) -> Callable[[StepContext], dict]:
    def fn(ctx: StepContext) -> dict:  # charts and the plain table of the first benchmark's runs
        dirs = [str(ctx.deps[name].dir / "run") for name in first]
        run(["report", *dirs, "--output", str(ctx.out / "run")], ctx.out / "log.txt", ctx.label)
        return {"runs": len(dirs), "labels": ctx.params["labels"]}
    return fn


def _manifest_counts(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    return json.loads(path.read_text()).get("counts", {}) if path.exists() else {}
