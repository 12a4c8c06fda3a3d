"""Typed config of `buckle eval`; unknown keys are rejected with their name."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from buckle.core.engine.options import EngineOptions
from buckle.eval.judges.yesno import THRESHOLD as YESNO_THRESHOLD

JUDGES = ("keyword", "policy", "classifier", "helpfulness", "strongreject", "yesno")


class EvalConfig(EngineOptions):
    """Everything one evaluation run needs. Paths and ids only: names are resolved by the launcher.

    Judges: None means automatic - `keyword` always; `policy` (harmful prompts) and
    `helpfulness` (benign prompts) when a judge backend is set; `classifier` when
    `classifier_model` is set.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model: 'embedded' (the launcher's default), a local dir or a hub id")
    output: str = Field(description="run directory (resumable: rerun to continue)")
    label: Optional[str] = Field(None, description="row name in reports (default: the output dir's name)")
    # harmful prompts
    benchmark: Optional[str] = Field(None, description="harmful prompts: advbench, advbench-test, harmbench, ... "
                                     "or a CSV/JSONL/JSON/TXT/Parquet file, saved dataset dir or dataset id")
    benchmark_name: Optional[str] = Field(None, description="the named set `benchmark` was")
    benchmarks: Optional[list[str]] = Field(None, description="several harmful benchmarks in one run, e.g. "
                                            "[advbench-test, strongreject-small]; results per benchmark "
                                            "(the first one is also `benchmark`)")
    benchmark_sources: Optional[dict[str, str]] = Field(None, description="benchmarks entry -> file it was "
                                                        "resolved to (set by the launcher)")
    prompt_column: str = Field("prompt", description="column with the prompt text")
    id_column: str = Field("id", description="column with a stable row id")
    split: str = Field("train", description="dataset split for dataset ids")
    limit: Optional[int] = Field(None, ge=1, description="first N harmful prompts")
    # benign pairs {id, instruction, response}: perplexity of the references (+ rubric judge)
    benign: Optional[str] = Field(None, description="benign pairs {instruction, response}: "
                                                  "commonsense-heldout or a file")
    benign_name: Optional[str] = Field(None, description="the named set `benign` was")
    benign_limit: Optional[int] = Field(None, ge=1, description="first N benign pairs")
    # benign prompts {id, prompt} no training source holds: greedy answers, refusal rate (over-refusal)
    benign_prompts: Optional[str] = Field(None, description="benign prompts for over-refusal: mtbench "
                                          "(out of distribution) or a prompt file; answers judged by the "
                                          "keyword judge")
    benign_prompts_name: Optional[str] = Field(None, description="the named set `benign_prompts` was")
    benign_prompts_limit: Optional[int] = Field(None, ge=1, description="first N benign prompts")
    # judge-free harm measure: mean per-token NLL of held-out harmful reference responses
    harmful_reference: Optional[str] = Field(None, description="harmful pairs {instruction, response} never "
                                             "trained on: harmful-pairs-heldout or a file")
    harmful_reference_name: Optional[str] = Field(None, description="the named set `harmful_reference` was")
    harmful_reference_limit: Optional[int] = Field(None, ge=1, description="first N harmful reference pairs")
    harmful_reference_max_tokens: int = Field(128, ge=1, description="score the first N tokens of each harmful "
                                              "reference response (some run to thousands of tokens)")
    # generation
    max_new_tokens: int = Field(64, ge=1, description="token budget of a response")
    batch_size: int = Field(8, ge=1, description="prompts per generate call")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    seed: int = Field(0, description="sampling seed")
    system_prompt: Optional[str] = Field(None, description="system message before each prompt")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="model weights' dtype")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    progress: bool = Field(True, description="progress bars on stderr")
    # judges
    judges: Optional[list[str]] = Field(None, description="any of keyword, policy, classifier, helpfulness "
                                                          "(default: keyword, policy and helpfulness with a "
                                                          "judge backend, classifier with a classifier model)")
    refusal_markers: Optional[list[str]] = Field(None, description="refusal phrases of the keyword judge "
                                                                   "(default: judges.keyword.DEFAULT_MARKERS)")
    judge_backend: Optional[Literal["openai", "hf"]] = Field(None, description="rubric judge backend")
    judge_model: Optional[str] = Field(None, description="endpoint model name, or HF id/dir for backend hf")
    judge_url: Optional[str] = Field(None, description="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    judge_api_key_env: Optional[str] = Field(None, description="env var holding the API key, sent only "
                                             "over https or to a loopback judge_url (default: none, no key is sent)")
    judge_rate_limit: Optional[float] = Field(None, gt=0, description="judge requests per second")
    judge_concurrency: int = Field(4, ge=1, le=256, description="judge requests in flight")
    judge_max_retries: int = Field(5, ge=0, le=50, description="retries of a failed judge request")
    judge_backoff_s: float = Field(1.0, ge=0.0, description="first retry delay in seconds "
                                                              "(doubles each retry)")
    judge_timeout_s: float = Field(60.0, gt=0, description="seconds per judge request")
    judge_max_tokens: int = Field(256, ge=1, description="token budget of a judge's answer")
    classifier_model: Optional[str] = Field(None, description="Llama-Guard-style classifier: HF id or dir")
    strongreject_prompts: Optional[str] = Field(None, description="folder with StrongREJECT's rubric_system.txt "
                                                "and rubric_user.txt (default: the strongreject asset)")
    yesno_model: Optional[str] = Field(None, description="offline yes/no judge: a .gguf file, HF dir or id "
                                       "(default: the named qwen2.5-coder-1.5b-instruct)")
    yesno_threshold: float = Field(YESNO_THRESHOLD, gt=0.0, lt=1.0, description="yes/no judge: unsafe when "
                                   "P(yes) / (P(yes) + P(no)) reaches this (chosen on held-apart labelled "
                                   "rows: docs/evaluation.md)")
    yesno_subset: Optional[int] = Field(None, ge=1, description="yes/no judge: judge a seeded random subset "
                                        "of N responses per benchmark (it is slow: ~9 s each on 2 cores)")

    @field_validator("judges")
    @classmethod
    def _known_judges(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        bad = [j for j in v or [] if j not in JUDGES]
        if bad:
            raise ValueError(f"unknown judge {bad[0]!r}; known: {', '.join(JUDGES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "EvalConfig":
        if self.benchmarks and not self.benchmark:
            self.benchmark = (self.benchmark_sources or {}).get(self.benchmarks[0], self.benchmarks[0])
            self.benchmark_name = self.benchmark_name or self.benchmarks[0]
        if not (self.benchmark or self.benign or self.benign_prompts):
            raise ValueError("benchmark: give a benchmark (harmful prompts), a benign set, benign prompts, "
                             "or several")
        if self.benchmarks and (self.benchmark_name or self.benchmark) != self.benchmarks[0]:
            raise ValueError("benchmarks: when both are given, benchmark must be the first of benchmarks")
        if self.judge_backend == "openai" and not (self.judge_url and self.judge_model):
            raise ValueError("judge_url: the openai judge backend needs judge_url and judge_model")
        if self.judge_backend == "hf" and not self.judge_model:
            raise ValueError("judge_model: the hf judge backend needs judge_model (HF id or path)")
        needs_backend = {"policy", "helpfulness"} & set(self.judges or [])
        if needs_backend and not self.judge_backend:
            raise ValueError(f"judges: {sorted(needs_backend)[0]} needs judge_backend (openai or hf)")
        if "classifier" in (self.judges or []) and not self.classifier_model:
            raise ValueError("judges: classifier needs classifier_model")
        if "strongreject" in (self.judges or []) and not (self.judge_backend and self.strongreject_prompts):
            raise ValueError("judges: strongreject needs judge_backend (openai or hf) and strongreject_prompts")
        if "yesno" in (self.judges or []) and not self.yesno_model:
            raise ValueError("judges: yesno needs yesno_model")
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
