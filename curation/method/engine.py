"""The target model as the beam search sees it: batched sampling and batched perplexity.

Backend-neutral: any buckle.core.engine Engine (hf or vllm) serves it, so the
beam search, the quality filter and the shard protocol never see which one ran.
"""
from __future__ import annotations

import math
from typing import Sequence

from buckle.core.engine.base import Engine

MIN_BUDGET = 8  # a row with fewer new tokens left than this is not worth sampling


class LMEngine:
    """The two batched calls a curation round makes, over an Engine (`LMEngine(engine, seed=...)`).

    The beam search holds two of these, which may wrap the same Engine: the
    reviser's (`generate`: chat-formatted with its tokenizer, bounded by its
    context) and the scorer's (`perplexity`: its tokenizer and context).
    """

    def __init__(self, engine: Engine, seed: int = 0):
        """Args:
            engine: a loaded buckle.core.engine Engine (hf or vllm; `select.load_engine`).
            seed: base seed; each sampling call uses the next one.
        """
        if not isinstance(engine, Engine):
            raise TypeError(f"LMEngine takes a buckle.core.engine Engine, not {type(engine).__name__} "
                            "(wrap an HF model and tokenizer in buckle.core.engine.hf.HFEngine)")
        self.backend = engine
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

    def sequence_tokens(self, prompt: str, response: str) -> int:
        """Tokens of a scored sequence: the chat-formatted prompt plus the response and its end token."""
        return len(self.backend.prompt_ids(prompt)) + self.text_tokens(response)

    def perplexity(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Perplexity of each response given its chat-formatted prompt (length-bucketed batches);
        nan for a pair longer than the context (the beam search drops those candidates)."""
        if not prompts:
            return []
        fits = [i for i, (p, r) in enumerate(zip(prompts, responses))
                if self.sequence_tokens(p, r) <= self.max_length]
        out = [math.nan] * len(prompts)
        if fits:
            for i, ppl in zip(fits, self.backend.perplexity([prompts[i] for i in fits],
                                                            [responses[i] for i in fits])):
                out[i] = ppl
        return out
