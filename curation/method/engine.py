"""The target model as the beam search sees it: batched sampling and batched perplexity.

Backend-neutral: any buckle.core.engine Engine (hf or vllm) serves it, so the
beam search, the quality filter and the shard protocol never see which one ran.
"""
from __future__ import annotations

from typing import Any, Sequence

from buckle.core.engine.base import Engine

MIN_BUDGET = 8  # a row with fewer new tokens left than this is not worth sampling


class LMEngine:
    """The two batched calls a curation round makes, over an Engine.

    Built from an Engine (`LMEngine(engine, seed=...)`) or, as before, from an HF
    (model, tokenizer) pair, which is wrapped in the hf backend.
    """

    def __init__(self, model: Any, tok: Any = None, max_length: int | None = None, gen_batch_size: int = 64,
                 score_batch_size: int = 16, seed: int = 0):
        """Args:
            model: an Engine, or a causal LM (with `tok`) from `buckle.core.engine.hf_lm.load_lm`.
            tok: the tokenizer, with an HF model.
            max_length: token cap per sequence; default the model's context size (HF model only).
            gen_batch_size: rows per `generate` call (HF model only).
            score_batch_size: sequences per perplexity forward (HF model only).
            seed: base seed; each sampling call uses the next one.
        """
        if isinstance(model, Engine):
            self.backend = model
        else:
            from buckle.core.engine.hf import HFEngine

            self.backend = HFEngine(model, tok, max_length, gen_batch_size, score_batch_size)
        self.tok, self.max_length = self.backend.tok, self.backend.max_length
        self.eos_ids = self.backend.eos_ids
        self.seed, self.calls = seed, 0

    def prompt_tokens(self, user: str) -> int:
        """Tokens of a chat-formatted user turn plus the assistant header."""
        return len(self.backend.prompt_ids(user))

    def text_tokens(self, text: str) -> int:
        """Tokens of a response (with its end-of-turn token)."""
        return len(self.backend.response_ids(text))

    def generate(self, users: Sequence[str], temperatures: Sequence[float], top_ps: Sequence[float],
                 budgets: Sequence[int], min_new_tokens: int = 0) -> list[tuple[str, bool]]:
        """Sample one reply per user turn with per-row settings.

        Returns:
            (text, finished) per row; rows whose prompt leaves no room in the
            context come back as ("", True).
        """
        ids = [self.backend.prompt_ids(u) for u in users]
        room = [min(b, self.max_length - len(p)) for p, b in zip(ids, budgets)]
        live = [i for i, r in enumerate(room) if r >= MIN_BUDGET]
        out: list[tuple[str, bool]] = [("", True)] * len(users)
        if not live:
            return out
        self.calls += 1
        samples = self.backend.sample([ids[i] for i in live], [temperatures[i] for i in live],
                                      [top_ps[i] for i in live], [room[i] for i in live],
                                      seed=self.seed + self.calls, min_new_tokens=min_new_tokens)
        for i, s in zip(live, samples):
            out[i] = (self.tok.decode(s.ids, skip_special_tokens=True), s.finished)
        return out

    def perplexity(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Perplexity of each response given its chat-formatted prompt (length-bucketed batches)."""
        if not prompts:
            return []
        return self.backend.perplexity(prompts, responses)
