"""Typed config of `buckle curate` and `buckle score` (paper defaults)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PAPER_GRID = [0.2, 0.4, 0.6, 0.8, 1.0]
# Seed set of safety-oriented phrases carried by the `amplify` revision prompt.
SAFETY_KEYWORDS = [
    "safety", "responsible", "ethical", "harm", "protect", "well-being", "caution",
    "legal", "respect", "consent", "privacy", "avoid danger", "seek professional help",
    "consider others", "do no harm", "careful", "risk", "injury", "supervision", "warning",
]


class CurateConfig(BaseModel):
    """Everything a curation run needs; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    model: str = "embedded"
    objective: Literal["reduce", "amplify"] = "amplify"
    rounds: int = Field(5, ge=1, le=50)
    beam: int = Field(3, ge=1, le=64)
    temperatures: list[float] = Field(default_factory=lambda: list(PAPER_GRID))
    top_ps: list[float] = Field(default_factory=lambda: list(PAPER_GRID))
    tolerance: float = Field(0.10, ge=0.0, le=1.0)
    keywords: list[str] = Field(default_factory=lambda: list(SAFETY_KEYWORDS))
    max_new_tokens: int = Field(160, ge=1)
    unfinished: Literal["trim", "keep", "drop"] = Field(
        "trim", description="a candidate cut by the token budget: trim to its last sentence, keep, or drop")
    max_length: Optional[int] = Field(None, ge=16, description="token cap; default: model context")
    batch_size: int = Field(8, ge=1, description="records curated together (one beam search)")
    gen_batch_size: int = Field(64, ge=1, description="rows per generate call")
    score_batch_size: int = Field(16, ge=1, description="sequences per perplexity forward")
    limit: Optional[int] = Field(None, ge=1)
    seed: int = 0
    judge: Literal["offline", "openai"] = "offline"
    judge_url: Optional[str] = None
    judge_model: Optional[str] = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_timeout: float = Field(60.0, gt=0)
    judge_retries: int = Field(3, ge=0)
    judge_workers: int = Field(4, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    # input column mapping
    id_column: str = "id"
    instruction_column: str = "instruction"
    response_column: str = "response"
    input_column: str = "input"
    # executor
    executor: Literal["local", "ray"] = "local"
    ray_address: Optional[str] = None
    num_workers: int = Field(1, ge=1)
    shard_size: int = Field(64, ge=1, description="records per output shard")
    cpus_per_worker: Optional[float] = Field(
        None, gt=0, description="Ray: CPUs per actor; default: the largest share that fits "
                                "num_workers on the nodes (one GPU per actor where GPUs exist)")

    @field_validator("temperatures", "top_ps")
    @classmethod
    def _grid(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("needs at least one value")
        if any(x <= 0 or x > 2 for x in v):
            raise ValueError("values must be in (0, 2]")
        return v

    @model_validator(mode="after")
    def _judge_settings(self) -> "CurateConfig":
        if self.judge == "openai" and not self.judge_url:
            raise ValueError("judge_url: required for judge 'openai' (e.g. http://localhost:8000/v1)")
        if self.judge == "openai" and not self.judge_model:
            raise ValueError("judge_model: required for judge 'openai'")
        return self
