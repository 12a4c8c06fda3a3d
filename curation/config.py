"""Typed configs of `buckle curate` and `buckle score` (paper defaults).

Field descriptions are the commands' flag help (launcher.flags builds the flags
from these models), so a field's name, type, default and help live here only.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from buckle.core.engine.options import EngineOptions
from buckle.curation.method.scorers import load_safety_phrases

PAPER_GRID = [0.2, 0.4, 0.6, 0.8, 1.0]
# Seed set of safety-oriented phrases carried by the `amplify` revision prompt (data/safety_phrases.txt).
SAFETY_KEYWORDS = load_safety_phrases()
Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class CorpusRunConfig(EngineOptions):
    """Model, input columns and executor: what every run over a corpus (score, curate) needs.

    The executors take any subclass; unknown keys are rejected.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field("embedded", description="target model: 'embedded' (SmolLM2-135M-Instruct), "
                                               "an HF model id or a local path")
    limit: Optional[int] = Field(None, ge=1, description="read at most N input rows")
    batch_size: int = Field(8, ge=1, description="records per step call")
    max_length: Optional[int] = Field(None, ge=16, description="token cap per sequence "
                                                               "(default: the model's context)")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: Dtype = Field("auto", description="model weights' dtype")
    # input column mapping
    id_column: str = Field("id", description="input column holding the id (missing ids get a content hash)")
    instruction_column: str = Field("instruction", description="input column holding the instruction")
    response_column: str = Field("response", description="input column holding the response")
    input_column: str = Field("input", description="input column holding optional extra input")
    # executor
    shard_size: int = Field(64, ge=1, description="rows per output part, the unit of resume")
    executor: Literal["local", "ray"] = Field("local", description="local (this process) or ray")
    ray_address: Optional[str] = Field(None, description="Ray cluster address (executor ray; default: "
                                                         "start a private local Ray with token auth)")
    num_workers: int = Field(1, ge=1, description="Ray actors, each holding the model once (executor ray)")
    cpus_per_worker: Optional[float] = Field(
        None, gt=0, description="Ray CPUs per actor (default: the largest share that fits num_workers "
                                "on the nodes; one GPU per actor where GPUs exist)")


class ScoreConfig(CorpusRunConfig):
    """Scoring: response perplexity only (curation-only keys are unknown here)."""

    batch_size: int = Field(8, ge=1, description="texts per forward pass (a step call takes 8 batches)")
    max_length: Optional[int] = Field(None, ge=16, description="token cap per text (default: the model's "
                                                               "context); longer texts are quarantined")
    # scoring is fast per row: bigger shards than curation's
    shard_size: int = Field(1024, ge=1, description="rows per output part, the unit of resume")


class CurateConfig(CorpusRunConfig):
    """The curation method: objective, beam search, sampling grid, quality filter, judge.

    With the fields of CorpusRunConfig, everything a curation run needs; unknown keys are rejected.
    """

    reviser: Optional[str] = Field(
        None, description="the model that writes the revisions: an HF id, a local path or a named model "
                          "(e.g. qwen2.5-coder-1.5b-instruct); default: the scoring model itself (`model`, the "
                          "paper's setting). `model` ranks the revisions by perplexity either way")
    objective: Literal["reduce", "amplify"] = Field(
        "amplify", description="reduce: lower perplexity (CTRL); amplify: add safety implication, "
                               "higher perplexity")
    revise: Literal["rewrite", "note", "both"] = Field(
        "rewrite", description="amplify: how the reviser adds the safety implication. rewrite: it rewrites the "
                               "whole answer (the paper's); note: it writes only the note, appended to the "
                               "original verbatim, so no fact of the answer can be lost (for a small reviser, "
                               "which drops clauses when it rewrites); both: each beam member gets both over "
                               "the grid")
    note_max_tokens: int = Field(56, ge=1, description="token budget of a note (revise note / both)")
    rounds: int = Field(5, ge=1, le=50, description="beam-search rounds r: each revises every text of the beam, "
                                                     "the k best so far (the original among them); stops earlier "
                                                     "when a round leaves the beam unchanged")
    beam: int = Field(3, ge=1, le=64, description="beam width k: candidates kept per round")
    temperatures: list[float] = Field(default_factory=lambda: list(PAPER_GRID), description="temperature grid")
    top_ps: list[float] = Field(default_factory=lambda: list(PAPER_GRID), description="top-p grid")
    tolerance: float = Field(0.10, ge=0.0, le=1.0, description="quality filter: readability and helpfulness "
                                                               ">= (1 - tolerance) x original's")
    keywords: list[str] = Field(default_factory=lambda: list(SAFETY_KEYWORDS),
                                description="safety phrases the amplify prompt carries")
    faithful: bool = Field(True, description="quality filter: also reject candidates that keep under 40% of the "
                                             "original's content words, add numbers or units absent from the "
                                             "original and instruction, or carry the rewriting prompt's words "
                                             "or the echoed question; unless amplify, also those that add over "
                                             "45% new content words or a clause mostly of new words "
                                             "(method.faithfulness)")
    keep_clauses: bool = Field(False, description="with faithful: also reject a candidate that drops a clause "
                                                  "of the original (fewer than half its content words kept): "
                                                  "the strict reading of 'keep every fact'; off in the "
                                                  "quickstarts, where the 1.5B reviser then changes ~8 of 24 "
                                                  "texts instead of 12 (docs/curation.md)")
    safety_check: Literal["keywords", "model"] = Field(
        "keywords", description="safety implication of a candidate: keywords (the seed phrases it carries) or "
                                "model (check_model's P(yes) that it carries fitting safety advice; amplify "
                                "keeps only P >= 0.5); the safety_before/after columns hold this score")
    safety_weight: float = Field(0.0, ge=0.0, description="amplify with safety_check model: rank candidates by "
                                                          "log(perplexity) + safety_weight x P(yes)")
    faithfulness_check: Literal["rules", "model"] = Field(
        "rules", description="rules: the offline checks of `faithful` only; model: also check_model's P(yes) that "
                             "the rewrite keeps every fact and adds nothing false (>= 0.5 kept), asked of each "
                             "round's finalists only (its top 2 x beam survivors by the objective)")
    check_model: Optional[str] = Field(None, description="the judge model of the model checks (safety_check, "
                                                          "faithfulness_check: model); default: the reviser")
    max_new_tokens: int = Field(160, ge=1, description="token budget of a revision")
    unfinished: Literal["trim", "keep", "drop"] = Field(
        "trim", description="a candidate cut by the token budget: trim to its last sentence, keep, or drop")
    batch_size: int = Field(8, ge=1, description="records curated together (one beam search)")
    gen_batch_size: int = Field(64, ge=1, description="rows per generate call")
    score_batch_size: int = Field(16, ge=1, description="sequences per perplexity forward")
    seed: int = Field(0, description="sampling seed")
    judge: Literal["offline", "openai"] = Field(
        "offline", description="helpfulness judge: offline (CPU text statistics) or openai (endpoint)")
    judge_url: Optional[str] = Field(None, description="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    judge_model: Optional[str] = Field(None, description="model name for the endpoint judge")
    judge_api_key_env: Optional[str] = Field(
        None, description="env var holding the judge's API key; none: no key is sent (a local server)")
    judge_timeout: float = Field(60.0, gt=0, description="seconds per judge request")
    judge_retries: int = Field(3, ge=0, description="retries of a failed judge request")
    judge_workers: int = Field(4, ge=1, description="judge requests in flight")
    shard_size: int = Field(64, ge=1, description="curated rows per output part, the unit of resume")

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
        if self.revise != "rewrite" and self.objective != "amplify":
            raise ValueError(f"revise: '{self.revise}' adds a safety note, which needs objective 'amplify'")
        if self.safety_weight and self.safety_check != "model":
            raise ValueError("safety_weight: needs safety_check 'model' (it weighs the model's P(yes))")
        return self

    @property
    def uses_check_model(self) -> bool:
        """Whether a model check (safety_check or faithfulness_check 'model') runs."""
        return self.safety_check == "model" or self.faithfulness_check == "model"
