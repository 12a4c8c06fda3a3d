"""Batched chat generation, now the hf backend's buckle.core.engine.hf_generate; names kept here."""
from buckle.core.engine.base import Generation  # noqa: F401
from buckle.core.engine.hf_generate import _decode, generate  # noqa: F401
from buckle.core.engine.hf_lm import chat, encode  # noqa: F401
from buckle.core.engine.hf_lm import load_lm as load_model  # noqa: F401
