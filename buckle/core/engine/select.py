"""Which backend a run uses (`engine: auto|hf|vllm`) and loading it.

`auto` picks vLLM where it is installed and faster: on a CUDA GPU when vllm
imports; on CPU the hf backend. Measured on 2 cores with the embedded model
(README, "Engines"): vLLM decodes 1.3-1.6x faster per token there once it keeps
no core for its frontend, but it loads in ~22 s against ~2 s and scores
perplexity no faster, so a CPU run of this project's size (minutes of
decoding at most) finishes sooner on hf. The choice and its reason go into
the run manifest.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from buckle.core.engine.base import Engine

BACKENDS = ("auto", "hf", "vllm")


def vllm_installed() -> bool:
    """Whether the vllm package is importable here (checked without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def choose(requested: str = "auto", device: str = "auto") -> tuple[str, str]:
    """The backend to use and why.

    Args:
        requested: "auto", "hf" or "vllm".
        device: the run's device setting ("auto", "cpu", "cuda", "cuda:N").

    Returns:
        (backend, reason).

    Raises:
        ValueError: an unknown backend, or "vllm" where vllm is not installed.
    """
    if requested not in BACKENDS:
        raise ValueError(f"engine: unknown backend {requested!r}; known: {', '.join(BACKENDS)}")
    if requested == "hf":
        return "hf", "asked for"
    if requested == "vllm":
        if not vllm_installed():
            raise ValueError("engine: vllm is not installed (on a GPU: pip install vllm; on CPU: make setup)")
        return "vllm", "asked for"
    from buckle.core.engine.hf_lm import pick_device

    dev = pick_device(device)
    if not dev.startswith("cuda"):
        return "hf", (f"auto: device {dev}: the hf engine loads in seconds (vLLM ~20 s) and a CPU-sized run "
                      "finishes sooner on it; pass engine vllm to use vLLM anyway")
    if not vllm_installed():
        return "hf", "auto: CUDA device, but vllm is not installed"
    return "vllm", "auto: CUDA device and vllm installed"


def load_engine(path: str, backend: str = "auto", dtype: str = "auto", device: str = "auto",
                max_length: int | None = None, gen_batch_size: int = 64, score_batch_size: int = 16,
                seed: int = 0, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1,
                kv_cache_gib: int = 4, scorer: str | None = None) -> Engine:
    """Load a model behind the chosen backend; `engine.choice` holds (backend, reason).

    Args:
        path: local checkpoint directory or hub id.
        backend: "auto", "hf" or "vllm" (see `choose`).
        scorer: vLLM's perplexity route, "prompt_logprobs" or "hf" (default: hf on CPU, where it
            measured faster, prompt_logprobs on GPU, where a second copy of the weights may not fit).
        Others: see HFEngine and VLLMEngine.
    """
    name, reason = choose(backend, device)
    if name == "hf":
        from buckle.core.engine.hf import HFEngine

        engine: Engine = HFEngine.load(path, dtype, device, max_length=max_length,
                                       gen_batch_size=gen_batch_size, score_batch_size=score_batch_size)
    else:
        from buckle.core.engine.hf_lm import pick_device
        from buckle.core.engine.vllm_backend import VLLMEngine

        on_cpu = not pick_device(device).startswith("cuda")
        engine = VLLMEngine(path, dtype, device, max_length, seed, tensor_parallel_size, pipeline_parallel_size,
                            kv_cache_gib, scorer or ("hf" if on_cpu else "prompt_logprobs"),
                            score_batch_size=score_batch_size)
    engine.choice = (name, reason)  # type: ignore[attr-defined]
    return engine


def engine_record(engine: Any) -> dict[str, Any]:
    """The manifest entry of a loaded engine: what was picked, why, and its settings."""
    name, reason = getattr(engine, "choice", (engine.name, "given"))
    return {**engine.describe(), "picked": name, "reason": reason}


def config_kwargs(cfg: Any) -> dict[str, Any]:
    """load_engine's keyword arguments from a run config's engine fields (missing ones keep defaults)."""
    keys = {"engine": "backend", "tensor_parallel_size": "tensor_parallel_size",
            "pipeline_parallel_size": "pipeline_parallel_size", "kv_cache_gib": "kv_cache_gib"}
    return {arg: getattr(cfg, key) for key, arg in keys.items() if getattr(cfg, key, None) is not None}


def choice_record(cfg: Any) -> dict[str, Any]:
    """The manifest entry of a run config's engine choice, made where the run starts (Ray actors make
    the same choice on their own devices: there `auto` on a GPU node means vllm where installed)."""
    kwargs = config_kwargs(cfg)
    try:
        name, reason = choose(kwargs.pop("backend", "auto"), getattr(cfg, "device", "auto"))
    except ValueError as exc:
        name, reason = "none", str(exc)
    return {"requested": getattr(cfg, "engine", "auto"), "picked": name, "reason": reason, **kwargs}
