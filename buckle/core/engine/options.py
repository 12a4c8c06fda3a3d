"""The engine keys every config that generates or scores carries (curate, score, eval)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field, model_validator


class EngineOptions(BaseModel):
    """Which backend runs the model, how a vLLM engine is laid out, and which server engine openai uses."""

    engine: Literal["auto", "hf", "vllm", "openai", "server"] = Field(
        "auto", description="generation backend: hf, vllm (in-process where vllm imports, else served from the "
                            "vLLM environment), openai/server (the completions server at base_url), or auto "
                            "(vllm on a CUDA GPU where installed, else hf: on CPU it loads in seconds, vLLM in "
                            "~36 s); the run records the pick")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per vLLM engine for tensor parallelism")
    pipeline_parallel_size: int = Field(1, ge=1, description="pipeline stages per vLLM engine (GPUs = tp x pp)")
    kv_cache_gib: int = Field(4, ge=1, description="vLLM's KV cache in GiB on CPU (VLLM_CPU_KVCACHE_SPACE)")
    base_url: Optional[str] = Field(None, description="engine openai: the OpenAI-compatible server's base URL "
                                                      "(.../v1); generation and perplexity go through /completions")
    served_model: Optional[str] = Field(None, description="engine openai: the model's name on the server "
                                                          "(default: the model path or id)")
    api_key_env: Optional[str] = Field(None, description="engine openai: environment variable with the API key "
                                                         "(default OPENAI_API_KEY if set); sent only over https "
                                                         "or to a loopback host")

    @model_validator(mode="after")
    def _server_needs_url(self) -> "EngineOptions":
        if self.engine in ("openai", "server") and not self.base_url:
            raise ValueError(f"base_url: engine {self.engine} needs the server's base URL (e.g. http://HOST:8000/v1)")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: {self.base_url!r} is not an http(s) URL")
        return self
