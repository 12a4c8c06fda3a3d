"""Fixtures of the curation tests: the tiny model with room for revision prompts."""
from __future__ import annotations

from pathlib import Path

import pytest
from tiny import widen_context


@pytest.fixture(scope="session")
def wide_tiny_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a 2048-token context: its byte-level tokenizer makes long prompts."""
    return widen_context(tiny_model_dir, tmp_path_factory.mktemp("tiny-wide"))


@pytest.fixture(scope="session")
def tiny_lm(wide_tiny_dir):
    """(model, tokenizer) of the wide tiny model, loaded once."""
    from buckle.core.engine.hf_lm import load_lm

    return load_lm(str(wide_tiny_dir), "float32")
