"""Typed config of `buckle pipeline`: curate, align, attack, defenses, evaluation, report."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from buckle.cluster.spec import time_seconds
from buckle.core.config import ConfigError, format_validation_error, read_yaml
from buckle.core.shipped import resolve_shipped, shipped_names
from buckle.curation.config import CurateConfig
from buckle.eval.config import EvalConfig
from buckle.train.config import TrainConfig
from buckle.train.recipes import resolve as resolve_recipe
from buckle.train.stages import DEFENSES

_HERE = Path(__file__).resolve().parent.parent / "pipelines"


class ResourcesSpec(BaseModel):
    """A `resources:` key: what a step asks of the machines beyond its kind's defaults (None: the default).

    A training's ranks span `nodes` x `gpus_per_node` (or `tasks_per_node` CPU ranks); a Ray curation
    spans `nodes` (default: enough for num_workers engines); every other step is one process on one node.
    The profile gives what is left unsaid (its `defaults`).
    """

    model_config = ConfigDict(extra="forbid")

    nodes: Optional[int] = Field(None, ge=1, description="machines: a training's ranks or a Ray cluster's nodes")
    gpus_per_node: Optional[int] = Field(None, ge=0, description="GPUs on each node (a training: one rank each)")
    tasks_per_node: Optional[int] = Field(None, ge=1, description="a training's ranks per node without GPUs")
    cpus_per_task: Optional[int] = Field(None, ge=1, description="CPUs per process")
    time: Optional[str] = Field(None, description="wall-clock limit: 90m, 2h, 1:30:00, 1-00:00:00")
    launcher: Optional[Literal["torchrun", "deepspeed"]] = Field(None, description="how a training's ranks "
                                                                 "start (default torchrun)")

    @field_validator("time")
    @classmethod
    def _time(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            time_seconds(value)  # raises naming the bad limit
        return value


def _one_process(value: ResourcesSpec) -> ResourcesSpec:
    """A section's resources where the step runs once: no launcher, no ranks."""
    bad = [k for k in ("launcher", "tasks_per_node") if getattr(value, k) is not None]
    if bad:
        raise ValueError(f"{bad[0]}: only training stages start several ranks; this step runs once")
    return value


class StageSpec(BaseModel):
    """A training stage: a shipped recipe name or YAML file, keys laid over it, and its resources."""

    model_config = ConfigDict(extra="forbid")

    recipe: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="nodes, GPUs per node, "
                                     "launcher of this stage's ranks (default: the profile's nodes x GPUs)")


def _set_by_pipeline(value: Any) -> Any:
    """A key the pipeline fills in itself: giving it in the section is an error naming it."""
    if value is not None:
        raise ValueError("set by the pipeline itself; remove it from this section")
    return value


class CurateSection(CurateConfig):
    """The `curate:` section: CurateConfig keys but model (the pipeline's top-level `model`)."""

    model: Optional[str] = Field(None, description="set by the pipeline: its top-level model")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="the curate steps' nodes (a "
                                     "Ray cluster with executor ray), GPUs per node, CPUs, time")

    _model_set_by_pipeline = field_validator("model")(_set_by_pipeline)  # not `check_model`: a CurateConfig key
    _runs_once = field_validator("resources")(_one_process)


class EvalSection(EvalConfig):
    """The `eval:` section: EvalConfig keys but model, output and label (set per evaluated model)."""

    model: Optional[str] = Field(None, description="set by the pipeline: the step's model")
    output: Optional[str] = Field(None, description="set by the pipeline: the step's directory")
    label: Optional[str] = Field(None, description="set by the pipeline: the evaluated stage")
    benchmarks: Optional[list[str]] = Field(None, min_length=1, description="several harmful-prompt sets "
                                            "(e.g. advbench-test, strongreject); each model is evaluated on "
                                            "each, with a verdict per set; default: `benchmark` alone")

    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="each eval step's GPUs "
                                     "(default: the engine's tensor_parallel_size x pipeline_parallel_size), "
                                     "CPUs, time; one node, one process")

    check_set = field_validator("model", "output", "label")(_set_by_pipeline)

    @field_validator("resources")
    @classmethod
    def _one_node(cls, value: ResourcesSpec) -> ResourcesSpec:
        if (value.nodes or 1) > 1:
            raise ValueError(f"nodes: an evaluation runs on one node, got {value.nodes}")
        return _one_process(value)

    @model_validator(mode="before")
    @classmethod
    def _first_benchmark(cls, values: Any) -> Any:
        # EvalConfig wants a benchmark or a benign set; `benchmarks` alone names the first
        if isinstance(values, dict) and values.get("benchmarks") and not values.get("benchmark"):
            values = {**values, "benchmark": values["benchmarks"][0]}
        return values


class PipelineConfig(BaseModel):
    """The every-stage pipeline; the curate and eval sections are their commands' configs."""

    model_config = ConfigDict(extra="forbid")

    name: str = "pipeline"
    model: str = "embedded"
    align: bool = Field(True, description="run the align stage first (base model lacks safety alignment)")
    curate_input: str = "commonsense-train"
    curate: CurateSection = Field(default_factory=CurateSection, description="CurateConfig keys but model")
    stages: dict[str, StageSpec]
    defenses: list[str] = Field(default_factory=lambda: list(DEFENSES))
    eval: EvalSection = Field(description="EvalConfig keys but model, output and label")
    eval_base: bool = Field(True, description="also evaluate the model as given (before align)")
    controls: bool = Field(True, description="train each defense's uncurated twin too: the same recipe and "
                                             "texts with the originals in place of the curated responses")
    baselines: list[Literal["safety-data"]] = Field(  # eval.verdicts.BASELINES, spelled out for pydantic
        default_factory=list, description="comparators trained besides the twin, per defense: `safety-data` "
        "trains <stage>-safety-data on as many refusals to AdvBench-train prompts as the defense has curated "
        "texts, with the same recipe, seed and follow-up")
    seeds: Optional[list[int]] = Field(None, min_length=1, description="train each defense (and twin) once "
                                       "per seed (recipe seed and data seed); None: once, with the recipe's seeds")
    contamination: Literal["drop", "error"] = Field(
        "drop", description="evaluation rows overlapping a training source: drop them (counted in the "
                            "report), or stop with an error naming the sets")
    near_duplicate: float = Field(0.7, gt=0.0, le=1.0, description="word Jaccard at or above which two "
                                                                  "texts count as near-duplicates")
    judge_agreement: bool = Field(True, description="measure each judge against pyrit's human labels and "
                                                    "print it beside the judge's column")
    report_pairs: int = Field(5, ge=0, description="random (seeded) before/after curated pairs in the report")
    sweep: Optional[list[dict[str, Any]]] = Field(
        None, description="dev-split sweep: variants {name, curate: {...}, stages: {...}} laid over this "
                          "config; `buckle pipeline --config` of such a file writes the levers table")
    dose: bool = Field(False, description="a dose-response sweep: its variants differ only in curate.limit, "
                       "and levers.md also shows each defense's ASR (curated, uncurated twin, attacked) "
                       "against the number of curated texts, as a table and as dose.png")
    profile: Optional[str] = Field(None, description="cluster profile to submit steps to; None: run here")

    @model_validator(mode="after")
    def _dose_needs_sizes(self) -> "PipelineConfig":
        if self.dose and len(self.sweep or []) < 2:
            raise ValueError("dose: a dose-response sweep needs at least two `sweep` variants (one per curate.limit)")
        return self


def shipped() -> list[str]:
    """Names of the shipped pipelines."""
    return shipped_names([_HERE], ".yaml")


def resolve(name_or_path: str) -> Path:
    """The YAML of a shipped pipeline name, or an existing file."""
    return resolve_shipped(name_or_path, _HERE, ".yaml", "pipeline")


def validate_sections(cfg: PipelineConfig) -> None:
    """Check what loading cannot (stages present, known defenses, each stage's recipe) before anything runs."""
    needed = (["align"] if cfg.align else []) + ["attack"] + list(cfg.defenses)
    missing = [s for s in needed if s not in cfg.stages]
    if missing:
        raise ConfigError(f"config error: stages.{missing[0]}: missing (needed by this pipeline)")
    bad = [d for d in cfg.defenses if d not in DEFENSES]
    if bad:
        raise ConfigError(f"config error: defenses: unknown stage '{bad[0]}'; known: {', '.join(DEFENSES)}")
    for name in needed:
        stage_recipe(cfg, name, model="m", output="o", sources={})


def stage_recipe(cfg: PipelineConfig, stage: str, model: str, output: str,
                 sources: dict[str, Any]) -> dict[str, Any]:
    """The recipe mapping of one stage step: shipped recipe + overrides + wiring.

    Args:
        sources: data role -> source path (or a whole data spec) laid over the recipe.
    """
    data = recipe_content(cfg, stage)
    data.update({"model": model, "output_dir": output})
    for role, source in sources.items():
        entry = data.setdefault("data", {}).get(role)
        entry = {"source": entry} if isinstance(entry, str) else dict(entry or {})
        data["data"][role] = dict(source) if isinstance(source, dict) else {**entry, "source": source}
    try:
        TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc).replace("config error: ", f"config error: stages.{stage}.")) from None
    return data


def recipe_content(cfg: PipelineConfig, stage: str) -> dict[str, Any]:
    """A stage's recipe file with its overrides laid over it: what the step's cache key hashes,
    so editing a recipe file recomputes the step as editing its overrides does."""
    spec = cfg.stages[stage]
    return deep_merge(read_yaml(resolve_recipe(spec.recipe)), spec.overrides)


def deep_merge(base: dict, over: dict) -> dict:
    """`base` with `over` laid on top, mappings merged key by key (a sweep variant, a stage's overrides)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
