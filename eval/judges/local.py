"""Local HF chat model as a judge backend (greedy, batched; loaded on first use)."""
from __future__ import annotations

from typing import Any, Sequence

from buckle.core.engine.hf_generate import generate
from buckle.core.engine.hf_lm import load_lm as load_model
from buckle.eval.judges.base import JudgeUnavailable


class HFChatBackend:
    """Rubric replies from a local or hub chat model, e.g. a Llama/Qwen instruct checkpoint."""

    def __init__(self, model: str, max_new_tokens: int = 256, batch_size: int = 4,
                 dtype: str = "auto", device: str = "auto"):
        self.model_path, self.max_new_tokens, self.batch_size = model, max_new_tokens, batch_size
        self.dtype, self.device = dtype, device
        self.id = f"hf:{model}"
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                self._loaded = load_model(self.model_path, self.dtype, self.device)
            except (OSError, ValueError) as exc:  # missing files, unknown formats
                raise JudgeUnavailable(f"judge model '{self.model_path}' could not be loaded: {exc}") from None
        return self._loaded

    def complete_many(self, conversations: Sequence[list[dict]]) -> list[str | Exception]:
        """Greedy replies in input order."""
        model, tok = self._load()
        gens = generate(model, tok, list(conversations), max_new_tokens=self.max_new_tokens,
                        batch_size=self.batch_size, desc="judge")
        return [g.text for g in gens]
