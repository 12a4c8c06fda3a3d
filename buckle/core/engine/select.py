"""Which backend a run uses (`engine: auto|hf|vllm|openai`) and loading it.

`auto` picks by expected total time, load plus work, in the simplest form:
on a CUDA GPU vLLM (in-process where vllm imports, else served from the vLLM
environment); on CPU the hf backend. Measured on 2 cores with the embedded
model (docs/engines.md): hf loads in ~2 s, a served vLLM starts in ~30-36 s
eager and ~66-78 s compiled, and decodes at most ~1.3-1.6x faster per token,
so a CPU run of this project's size (minutes of decoding at most) finishes
sooner on hf. `vllm` runs in-process where `import vllm` works (a GPU user's
own install), else as a server from the vLLM environment (vllm_server).
`openai` (alias `server`) uses a completions server the user already runs.
The choice and its reason go into the run manifest.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from buckle.core.engine.base import Engine

BACKENDS = ("auto", "hf", "vllm", "openai", "server")


def vllm_installed() -> bool:
    """Whether the vllm package is importable here (checked without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def vllm_env() -> str | None:
    """The vLLM environment's python (buckle.core.engine.vllm_server.vllm_python), or None."""
    from buckle.core.engine.vllm_server import vllm_python

    return vllm_python()


def choose(requested: str = "auto", device: str = "auto", base_url: str | None = None) -> tuple[str, str]:
    """The backend to use and why.

    Args:
        requested: "auto", "hf", "vllm", "openai" or "server" (the same as openai).
        device: the run's device setting ("auto", "cpu", "cuda", "cuda:N").
        base_url: the completions server of engine openai.

    Returns:
        (backend, reason); backend is "hf", "vllm" (in-process), "vllm-served" or "openai".

    Raises:
        ValueError: an unknown backend, "vllm" with no vLLM anywhere, "openai" without base_url.
    """
    if requested not in BACKENDS:
        raise ValueError(f"engine: unknown backend {requested!r}; known: {', '.join(BACKENDS)}")
    if requested == "hf":
        return "hf", "asked for"
    if requested in ("openai", "server"):
        if not base_url:
            raise ValueError(f"base_url: engine {requested} needs the server's base URL (e.g. http://HOST:8000/v1)")
        return "openai", f"asked for: server {base_url}"
    if requested == "vllm":
        if vllm_installed():
            return "vllm", "asked for: vllm imports here, in-process"
        python = vllm_env()
        if python is None:
            raise ValueError("engine: vllm is not installed (CPU: make setup builds .venv-vllm; "
                             "GPU: pip install vllm; or set BUCKLE_VLLM_PYTHON)")
        return "vllm-served", f"asked for: served from the vLLM environment {python}"
    from buckle.core.engine.hf_lm import pick_device

    dev = pick_device(device)
    if not dev.startswith("cuda"):
        return "hf", (f"auto: device {dev}: the hf engine loads in ~2 s (vLLM ~36 s eager) and a CPU-sized "
                      "run finishes sooner on it; pass engine vllm to use vLLM anyway")
    if vllm_installed():
        return "vllm", "auto: CUDA device and vllm installed"
    if vllm_env() is not None:
        return "vllm-served", "auto: CUDA device and a vLLM environment (served)"
    return "hf", "auto: CUDA device, but vllm is not installed"


def load_engine(path: str, backend: str = "auto", dtype: str = "auto", device: str = "auto",
                max_length: int | None = None, gen_batch_size: int = 64, score_batch_size: int = 16,
                seed: int = 0, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1,
                kv_cache_gib: int = 4, scorer: str | None = None, base_url: str | None = None,
                served_model: str | None = None, api_key_env: str | None = None) -> Engine:
    """Load a model behind the chosen backend; `engine.choice` holds (backend, reason).

    Args:
        path: local checkpoint directory or hub id.
        backend: "auto", "hf", "vllm", "openai" or "server" (see `choose`).
        gen_batch_size: rows per batch (hf, in-process vllm) or requests in flight (served backends).
        scorer: in-process vLLM's perplexity route, "prompt_logprobs" or "hf" (default: hf on CPU, where it
            measured faster, prompt_logprobs on GPU, where a second copy of the weights may not fit).
        base_url, served_model, api_key_env: engine openai's server (see OpenAIEngine).
        Others: see HFEngine, VLLMEngine and ServedVLLMEngine.
    """
    name, reason = choose(backend, device, base_url)
    if name == "hf":
        from buckle.core.engine.hf import HFEngine

        engine: Engine = HFEngine.load(path, dtype, device, max_length=max_length,
                                       gen_batch_size=gen_batch_size, score_batch_size=score_batch_size)
    elif name == "openai":
        from buckle.core.engine.served import OpenAIEngine

        engine = OpenAIEngine(path, base_url, served_model, api_key_env, max_length, concurrency=gen_batch_size)
    elif name == "vllm-served":
        from buckle.core.engine.vllm_server import ServedVLLMEngine

        engine = ServedVLLMEngine(path, dtype=dtype, device=device, max_length=max_length, seed=seed,
                                  kv_cache_gib=kv_cache_gib, tensor_parallel_size=tensor_parallel_size,
                                  pipeline_parallel_size=pipeline_parallel_size, concurrency=gen_batch_size)
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
            "pipeline_parallel_size": "pipeline_parallel_size", "kv_cache_gib": "kv_cache_gib",
            "base_url": "base_url", "served_model": "served_model", "api_key_env": "api_key_env"}
    return {arg: getattr(cfg, key) for key, arg in keys.items() if getattr(cfg, key, None) is not None}


def choice_record(cfg: Any) -> dict[str, Any]:
    """The manifest entry of a run config's engine choice, made where the run starts (Ray actors make
    the same choice on their own devices: there `auto` on a GPU node means vllm where installed)."""
    kwargs = config_kwargs(cfg)
    try:
        name, reason = choose(kwargs.pop("backend", "auto"), getattr(cfg, "device", "auto"), kwargs.get("base_url"))
    except ValueError as exc:
        name, reason = "none", str(exc)
    return {"requested": getattr(cfg, "engine", "auto"), "picked": name, "reason": reason, **kwargs}
