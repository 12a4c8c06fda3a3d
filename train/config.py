"""The typed training recipe: one stage, its data, the model and how to train it.

Recipes are YAML files validated by `TrainConfig`; unknown keys are errors that
name the key. Paths and names stay unresolved here: the launcher turns model and
data-set names into paths before `train.run.train` sees the config.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from buckle.train.stages import STAGES, rule

Stage = Literal["align", "pre", "during", "post", "attack"]  # train.stages.STAGES, spelled out for pydantic


class DataSpec(BaseModel):
    """One data source: a JSONL/Parquet file, a directory, a hub dataset id or a named set.

    Column names left empty take the role's default (see `train.data.ROLE_COLUMNS`).
    """

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1)
    limit: Optional[int] = Field(default=None, ge=1)
    instruction_column: Optional[str] = None
    response_column: Optional[str] = None
    input_column: Optional[str] = None
    split: str = "train"


class LoraSpec(BaseModel):
    """LoRA adapters (peft); `merge` writes a merged full model instead of the adapter only."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: Union[str, list[str]] = "all-linear"
    merge: bool = True
    # a float32 base trained in bfloat16 (the converted 1.5B) would otherwise be written whole in float32
    merge_dtype: Optional[Literal["bfloat16", "float16", "float32"]] = Field(
        default=None, description="dtype of the merged model's weights; None: the base model's own")


class StageData(BaseModel):
    """The data of a stage, by role; `curated_ratio` and `seed` shape the mix."""

    model_config = ConfigDict(extra="forbid")

    harmful: Optional[DataSpec] = None
    benign: Optional[DataSpec] = None
    curated: Optional[DataSpec] = None
    user: Optional[DataSpec] = None
    curated_ratio: float = Field(default=1.0, gt=0.0)  # during: curated examples per user example
    seed: int = 0


def _spec(value: object) -> object:
    # a bare string in YAML means {source: string}
    return {"source": value} if isinstance(value, str) else value


class TrainConfig(BaseModel):
    """A training recipe for one stage."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    model: str = "embedded"
    output_dir: str = "runs/train"
    data: StageData

    epochs: float = Field(default=2.0, gt=0)
    max_steps: int = Field(default=-1, ge=-1)
    learning_rate: float = Field(default=2e-5, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(default=0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=8, ge=1)  # per device
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=256, ge=8)
    system_prompt: Optional[str] = None
    chat_template: Optional[str] = None  # for models without one (base models); see train.run
    seed: int = 42

    bf16: Union[bool, Literal["auto"]] = "auto"
    gradient_checkpointing: bool = False
    lora: Optional[LoraSpec] = None
    deepspeed: Optional[str] = None  # zero2 | zero3 | zero3-offload | zero3-offload-optimizer | a JSON file

    save_steps: Optional[int] = Field(default=None, ge=1)  # checkpoint every N steps
    save_total_limit: Optional[int] = Field(default=2, ge=1)
    resume: bool = False
    logging_steps: int = Field(default=1, ge=1)
    log_examples: bool = False  # write the example ids each rank trained on (logs/)

    @model_validator(mode="before")
    @classmethod
    def _bare_sources(cls, values: object) -> object:
        data = values.get("data") if isinstance(values, dict) else None
        if isinstance(data, dict):
            values["data"] = {k: _spec(v) if k in ("harmful", "benign", "curated", "user") else v
                              for k, v in data.items()}
        return values

    @model_validator(mode="after")
    def _stage_data(self) -> "TrainConfig":
        required, optional = rule(self.stage).required, rule(self.stage).optional
        given = {r for r in ("harmful", "benign", "curated", "user") if getattr(self.data, r)}
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"stage '{self.stage}' needs data.{missing[0]}")
        extra = sorted(given - required - optional)
        if extra:
            raise ValueError(f"stage '{self.stage}' does not use data.{extra[0]}")
        return self

    def sources(self) -> dict[str, DataSpec]:
        """The data specs this stage uses, by role."""
        return {r: s for r in ("harmful", "benign", "curated", "user")
                if (s := getattr(self.data, r)) is not None}
