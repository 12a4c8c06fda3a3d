"""Fixtures of the curation tests: the tiny model with room for revision prompts."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def wide_tiny_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a 2048-token context: its byte-level tokenizer makes long prompts."""
    out = tmp_path_factory.mktemp("tiny-wide")
    shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)
    for name, key in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        data = json.loads((out / name).read_text())
        data[key] = 2048
        (out / name).write_text(json.dumps(data))
    return out


@pytest.fixture(scope="session")
def tiny_lm(wide_tiny_dir):
    """(model, tokenizer) of the wide tiny model, loaded once."""
    from buckle.curation.method.lm import load_lm

    return load_lm(str(wide_tiny_dir))
