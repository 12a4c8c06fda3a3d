"""The plan's nodes as runnable steps: each runs an ordinary `buckle` command through the runner.

Steps run here as subprocesses, or on a cluster profile as submitted jobs
(pipeline.runner), each placed as its node needs (pipeline.resources); either
way a step's outputs land in its content-addressed directory (pipeline.steps).
A step's params are its resolved config: the command's config with every
default filled in, so a changed default recomputes it. A step's `command`
builds its argv without running it: what the step runs and the dry run shows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import yaml

from buckle.cluster.profiles import load_profile
from buckle.core.catalog.data import SAFETY_REFUSALS
from buckle.curation.config import CurateConfig
from buckle.eval.agreement import AGREEMENT_JUDGES
from buckle.eval.contamination import PAIR_KEYS
from buckle.launcher.pipeline.config import PipelineConfig, recipe_content, stage_recipe
from buckle.launcher.pipeline.plan import (ContaminationNode, CurateNode, EvalNode, JudgesNode, Node, Plan,
                                           ReportNode, TrainNode, benchmarks, build_plan)
from buckle.launcher.pipeline.resources import Placement, place
from buckle.launcher.pipeline.runner import Runner, bind
from buckle.launcher.pipeline.steps import Step, StepContext, StepResult, run_steps
from buckle.eval.verdicts import SAFETY_DATA, UNCURATED
from buckle.train.config import DataSpec, TrainConfig
from buckle.train.sources import read_source
from buckle.train.stages import rule

# eval keys that only the first benchmark's step carries: benign references and the judge-free harm NLL
BENIGN_KEYS = ("benign", "benign_name", "benign_limit", "harmful_reference", "harmful_reference_name",
               "harmful_reference_limit", "benign_prompts", "benign_prompts_name", "benign_prompts_limit")
# eval keys naming benign prompt sets (over-refusal): contamination-checked, read from their clean copy
PROMPT_KEYS = ("benign_prompts",)
# eval keys the pipeline sets per step, or that only the pipeline's section has
SET_PER_STEP = ("model", "output", "label", "benchmark", "benchmarks", "resources")
# eval keys that configure judges: what the judges step passes to `buckle judges check`
JUDGE_KEYS = ("judge", "refusal", "classifier", "yesno", "strongreject")
SLOW_SUBSET = 40  # judges that run a model see a balanced seeded sample of the labelled rows
Made = tuple[Callable, dict, Callable]  # a step's function, params and argv builder


def build_steps(cfg: PipelineConfig, run: Runner, plan: Plan | None = None) -> list[Step]:
    """One step per node of the plan, in the plan's order, each placed on the config's profile (or here)."""
    plan = plan or build_plan(cfg)
    profile = load_profile(cfg.profile) if cfg.profile else None
    return [_step(cfg, run, node, place(node.needs, profile)) for node in plan.nodes]


def run_pipeline(cfg: PipelineConfig, root: Path, run: Runner,
                 log: Callable[[str], None] = print) -> tuple[Plan, dict[str, StepResult]]:
    """Build the plan, write it (root/plan.json) and run every step under `root`; cached steps are reused."""
    plan = build_plan(cfg)
    root.mkdir(parents=True, exist_ok=True)
    (root / "plan.json").write_text(json.dumps(plan.to_dict(), indent=2))
    return plan, run_steps(build_steps(cfg, run, plan), root, log=log)


def model_dir(result: StepResult) -> str:
    """Where a training step saved its Hugging Face model."""
    return str(result.run / "model")


def _step(cfg: PipelineConfig, run: Runner, node: Node, placement: Placement) -> Step:
    makers = {TrainNode: _train, CurateNode: _curate, ContaminationNode: _contamination, JudgesNode: _judges,
              EvalNode: _eval, ReportNode: _report}
    fn, params, command = makers[type(node)](cfg, bind(run, placement), node, placement)
    return Step(node.name, fn, params, [d.name for d in node.deps()], [a.name for a in node.after()],
                command=command, placement=placement)


def _model(cfg: PipelineConfig, node: TrainNode | None, ctx: StepContext | None) -> str:
    """A model node's saved model (a placeholder naming the node before it runs; its key is a dep's)."""
    if node is None:
        return cfg.model
    return model_dir(ctx.deps[node.name]) if ctx is not None else f"<{node.name}>"


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _curate(cfg: PipelineConfig, run: Runner, node: CurateNode, placement: Placement) -> Made:
    given = {k: v for k, v in cfg.curate.model_dump(exclude_unset=True).items() if k not in ("model", "resources")}

    def config(model: str) -> dict[str, Any]:  # the command's config, every default filled in
        return CurateConfig(**given, model=model).model_dump()

    def command(ctx: StepContext) -> list[str]:
        return ["curate", "--config", str(ctx.out / "curate.yaml"), "--input", cfg.curate_input,
                "--output", str(ctx.out / "run")]

    def fn(ctx: StepContext) -> dict:
        _write_yaml(ctx.out / "curate.yaml", config(_model(cfg, node.scorer, ctx)))
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        path = ctx.out / "run" / "manifest.json"
        return json.loads(path.read_text()).get("counts", {}) if path.exists() else {}
    return fn, {"input": cfg.curate_input, "config": config(_model(cfg, node.scorer, None))}, command


def _recipe(cfg: PipelineConfig, node: TrainNode, ctx: StepContext | None, out: str) -> dict[str, Any]:
    """The recipe of a training node: its stage's recipe with the plan's model, data and seed laid over it."""
    stage = rule(node.stage)
    model = _model(cfg, node.start, ctx)
    sources: dict[str, Any] = {}
    if node.curated is not None:
        sources["curated"] = str(ctx.deps[node.curated.name].run / "curated") if ctx else f"<{node.curated.name}>"
    if stage.user_from_attack:  # during trains on the attack's data
        sources["user"] = stage_recipe(cfg, "attack", model=model, output=out, sources={})["data"]["harmful"]
    recipe = stage_recipe(cfg, node.stage, model=model, output=out, sources=sources)
    if node.seed is not None:
        recipe["seed"] = node.seed
        recipe["data"]["seed"] = node.seed
    if node.variant is UNCURATED:  # the same texts as they were before curation: the control
        recipe["data"]["curated"]["response_column"] = "original"
    elif node.variant is SAFETY_DATA:  # refusals in place of the curated texts, as many as they are
        recipe["data"]["curated"] = safety_spec(recipe["data"]["curated"], recipe["data"]["seed"], ctx is not None)
    return recipe


def safety_spec(curated: dict[str, Any], seed: int, count: bool) -> dict[str, Any]:
    """The safety-data baseline's data spec: the refusal set, limited to the curated records the defense reads.

    Args:
        curated: the defense's curated data spec (its source a curate node's output).
        seed: the data seed (a `limit` samples with it).
        count: read the curated source to count its records; False before it exists (the plan's
            params), where the recipe's limit stands in: the count follows from the curate node's key.
    """
    limit = curated.get("limit")
    if count:
        limit = len(read_source(DataSpec(**curated), "curated", seed)[0])
    return DataSpec(source=SAFETY_REFUSALS, limit=limit, response_column="response").model_dump(exclude_defaults=True)


def _train(cfg: PipelineConfig, run: Runner, node: TrainNode, placement: Placement) -> Made:
    def command(ctx: StepContext) -> list[str]:  # each rank runs it; the placement says how many
        argv = ["train", "--config", str(ctx.out / "recipe.yaml")]
        return argv + (["--resume"] if (ctx.out / "run" / "checkpoints").exists() else [])  # a crash continues

    def fn(ctx: StepContext) -> dict:
        out = ctx.out / "run"
        _write_yaml(ctx.out / "recipe.yaml", _recipe(cfg, node, ctx, str(out)))
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        metrics = json.loads((out / "metrics.json").read_text())
        return {k: metrics.get(k) for k in ("examples", "steps", "tokens", "initial_loss", "final_loss",
                                            "train_s", "tokens_per_s")}
    resolved = TrainConfig.model_validate(_recipe(cfg, node, None, "<out>")).model_dump()
    # the rank count shapes the global batch: another count is another training
    return fn, {"recipe": resolved, "ranks": placement.processes, "launcher": placement.launcher}, command


def training_sources(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Name -> {DataSpec fields, "role"} of every data source a training stage of this pipeline reads.

    The whole source is checked, not the recipe's `limit` sample: every seed's sample is then covered.
    """
    stages = (["align"] if cfg.align else []) + ["attack"] + list(cfg.defenses)
    out: dict[str, dict[str, Any]] = {}
    attack = (recipe_content(cfg, "attack").get("data") or {}).get("harmful")
    for stage in stages:
        for role, spec in (recipe_content(cfg, stage).get("data") or {}).items():
            if role not in ("harmful", "benign", "user") or not spec:
                continue
            if role == "user" and rule(stage).user_from_attack:
                spec = attack
            spec = {"source": spec} if isinstance(spec, str) else dict(spec)
            spec.pop("limit", None)
            role_read = "prompts" if stage == "align" and role == "harmful" else role
            out.setdefault(f"{spec['source']} ({stage} {role})", {**DataSpec(**spec).model_dump(), "role": role_read})
    if SAFETY_DATA.name in cfg.baselines and cfg.defenses:  # prompts and refusals, read as the baseline reads them
        spec = DataSpec(source=SAFETY_REFUSALS, response_column="response")
        out[f"{SAFETY_REFUSALS} ({SAFETY_DATA.name} curated)"] = {**spec.model_dump(), "role": "curated"}
    return out


def eval_sets(cfg: PipelineConfig) -> dict[str, str]:
    """Evaluation set name -> kind ("prompts" or "pairs") of every set the eval steps read."""
    sets = {b: "prompts" for b in benchmarks(cfg) if b}
    for key in PAIR_KEYS:
        name = getattr(cfg.eval, key, None)
        if isinstance(name, str) and name:
            sets[name] = "pairs"
    for key in PROMPT_KEYS:
        name = getattr(cfg.eval, key, None)
        if isinstance(name, str) and name:
            sets[name] = "prompts"
    return sets


def _contamination(cfg: PipelineConfig, run: Runner, node: ContaminationNode, placement: Placement) -> Made:
    params = {"sources": training_sources(cfg), "evals": eval_sets(cfg), "mode": cfg.contamination,
              "threshold": cfg.near_duplicate, "prompt_column": cfg.eval.prompt_column,
              "id_column": cfg.eval.id_column, "split": cfg.eval.split}

    def command(ctx: StepContext) -> list[str]:
        return ["contamination", "--config", str(ctx.out / "contamination.json"), "--output", str(ctx.out / "run")]

    def fn(ctx: StepContext) -> dict:
        curated = [str(ctx.deps[c.name].run / "curated") for c in node.curates]
        (ctx.out / "contamination.json").write_text(json.dumps({**params, "curated": curated}, indent=2))
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        return json.loads((ctx.out / "run" / "contamination.json").read_text())
    return fn, params, command


def _judges(cfg: PipelineConfig, run: Runner, node: JudgesNode, placement: Placement) -> Made:
    resolved = cfg.eval.model_dump()
    settings = {k: v for k, v in resolved.items() if k.startswith(JUDGE_KEYS)}
    judges = [j for j in cfg.eval.active_judges() if j in AGREEMENT_JUDGES]
    params = {"judges": judges, "settings": settings, "set": "objective",
              "model_limit": settings.get("yesno_subset") or SLOW_SUBSET}

    def command(ctx: StepContext) -> list[str]:
        return ["judges", "check", "--config", str(ctx.out / "judges.yaml"), "--judge", ",".join(judges),
                "--set", params["set"], "--model-limit", str(params["model_limit"]), "--output", str(ctx.out / "run")]

    def fn(ctx: StepContext) -> dict:
        _write_yaml(ctx.out / "judges.yaml", settings)
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        results = json.loads((ctx.out / "run" / "agreement.json").read_text())["results"]
        return {r["judge"]: r for r in results}
    return fn, params, command


def _eval(cfg: PipelineConfig, run: Runner, node: EvalNode, placement: Placement) -> Made:
    """Evaluate one model on one benchmark (its contamination-clean copy); the first also scores benign
    references and the eval keys beyond the benchmark (e.g. the harmful-reference NLL)."""
    resolved = {k: v for k, v in cfg.eval.model_dump().items() if k not in SET_PER_STEP}
    if not node.first:
        resolved = {k: v for k, v in resolved.items() if k not in BENIGN_KEYS}
    params = {"eval": resolved, "benchmark": node.benchmark, "label": node.row,
              "model": _model(cfg, node.model, None)}

    def command(ctx: StepContext) -> list[str]:
        return ["eval", "--config", str(ctx.out / "eval.yaml"), "--model", _model(cfg, node.model, ctx),
                "--output", str(ctx.out / "run"), "--label", node.row]

    def fn(ctx: StepContext) -> dict:
        clean = ctx.deps[node.gate.name].metrics.get("clean", {})
        data = dict(resolved)
        if node.benchmark:  # the clean copy holds rows {id, prompt}
            data.update(benchmark=clean.get(node.benchmark, node.benchmark), benchmark_name=node.benchmark,
                        prompt_column="prompt", id_column="id")
        for key in PAIR_KEYS + PROMPT_KEYS:
            if data.get(key):
                data.update({key: clean.get(data[key], data[key]), f"{key}_name": data[key]})
        _write_yaml(ctx.out / "eval.yaml", data)
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        return json.loads((ctx.out / "run" / "summary.json").read_text())
    return fn, params, command


def _report(cfg: PipelineConfig, run: Runner, node: ReportNode, placement: Placement) -> Made:
    first = [e for e in node.evals if e.first]

    def command(ctx: StepContext) -> list[str]:  # charts and the plain table of the first benchmark's runs
        return ["report", *[str(ctx.deps[e.name].run) for e in first], "--output", str(ctx.out / "run")]

    def fn(ctx: StepContext) -> dict:
        run(command(ctx), ctx.out / "log.txt", ctx.label)
        return {"runs": len(first)}
    return fn, {}, command
