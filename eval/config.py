"""Typed config of `buckle eval`; unknown keys are rejected with their name."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JUDGES = ("keyword", "policy", "classifier", "helpfulness")


class EvalConfig(BaseModel):
    """Everything one evaluation run needs. Paths and ids only: names are resolved by the launcher.

    Judges: None means automatic - `keyword` always; `policy` (harmful prompts) and
    `helpfulness` (benign prompts) when a judge backend is set; `classifier` when
    `classifier_model` is set.
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    output: str
    label: Optional[str] = Field(None, description="row name in reports; default: output dir name")
    # harmful prompts
    benchmark: Optional[str] = Field(None, description="CSV/JSONL/TXT/Parquet file or dataset id")
    benchmark_name: Optional[str] = None
    prompt_column: str = "prompt"
    id_column: str = "id"
    split: str = "train"
    limit: Optional[int] = Field(None, ge=1)
    # benign pairs {id, instruction, response}: perplexity of the references (+ rubric judge)
    benign: Optional[str] = None
    benign_name: Optional[str] = None
    benign_limit: Optional[int] = Field(None, ge=1)
    # generation
    max_new_tokens: int = Field(64, ge=1)
    batch_size: int = Field(8, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = 0
    system_prompt: Optional[str] = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    progress: bool = True
    # judges
    judges: Optional[list[str]] = None
    refusal_markers: Optional[list[str]] = Field(None, description="default: judges.keyword.DEFAULT_MARKERS")
    judge_backend: Optional[Literal["openai", "hf"]] = None
    judge_model: Optional[str] = Field(None, description="endpoint model name, or HF id/path for 'hf'")
    judge_url: Optional[str] = Field(None, description="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    judge_api_key_env: Optional[str] = Field(None, description="env var holding the key; default OPENAI_API_KEY if set")
    judge_rate_limit: Optional[float] = Field(None, gt=0, description="requests per second")
    judge_concurrency: int = Field(4, ge=1, le=256)
    judge_max_retries: int = Field(5, ge=0, le=50)
    judge_backoff_s: float = Field(1.0, ge=0.0)
    judge_timeout_s: float = Field(60.0, gt=0)
    judge_max_tokens: int = Field(256, ge=1)
    classifier_model: Optional[str] = None

    @field_validator("judges")
    @classmethod
    def _known_judges(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        bad = [j for j in v or [] if j not in JUDGES]
        if bad:
            raise ValueError(f"unknown judge {bad[0]!r}; known: {', '.join(JUDGES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "EvalConfig":
        if not self.benchmark and not self.benign:
            raise ValueError("benchmark: give a benchmark (harmful prompts), a benign set, or both")
        if self.judge_backend == "openai" and not (self.judge_url and self.judge_model):
            raise ValueError("judge_url: the openai judge backend needs judge_url and judge_model")
        if self.judge_backend == "hf" and not self.judge_model:
            raise ValueError("judge_model: the hf judge backend needs judge_model (HF id or path)")
        needs_backend = {"policy", "helpfulness"} & set(self.judges or [])
        if needs_backend and not self.judge_backend:
            raise ValueError(f"judges: {sorted(needs_backend)[0]} needs judge_backend (openai or hf)")
        if "classifier" in (self.judges or []) and not self.classifier_model:
            raise ValueError("judges: classifier needs classifier_model")
        return self

    def active_judges(self) -> list[str]:
        """The judges this run applies, in order."""
        if self.judges is not None:
            return list(self.judges)
        out = ["keyword"]
        if self.judge_backend:
            out += ["policy", "helpfulness"]
        if self.classifier_model:
            out.append("classifier")
        return out

    def generation_key(self) -> dict:
        """Settings that make a stored response reusable on resume."""
        return {"model": self.model, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_p": self.top_p, "seed": self.seed,
                "system_prompt": self.system_prompt}
