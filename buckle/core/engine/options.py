"""The engine keys every config that generates or scores carries (curate, score, eval)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EngineOptions(BaseModel):
    """Which backend runs the model, and how a vLLM engine is laid out."""

    engine: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="generation backend: hf, vllm, or auto (vllm on a CUDA GPU where installed, "
                            "else hf: on CPU it loads in seconds, vLLM in ~20 s); the run records the pick")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per vLLM engine for tensor parallelism")
    pipeline_parallel_size: int = Field(1, ge=1, description="pipeline stages per vLLM engine (GPUs = tp x pp)")
    kv_cache_gib: int = Field(4, ge=1, description="vLLM's KV cache in GiB on CPU (VLLM_CPU_KVCACHE_SPACE)")
