"""The target model as the beam search sees it: batched sampling and batched perplexity."""
from __future__ import annotations

from typing import Any, Sequence

from buckle.curation.method.lm import context_length, perplexities, prompt_ids, response_ids

MIN_BUDGET = 8  # a row with fewer new tokens left than this is not worth sampling


class LMEngine:
    """Wraps (model, tokenizer) with the two batched calls a curation round makes."""

    def __init__(self, model: Any, tok: Any, max_length: int | None = None, gen_batch_size: int = 64,
                 score_batch_size: int = 16, seed: int = 0):
        """Args:
            model, tok: from `curation.method.lm.load_lm`.
            max_length: token cap per sequence; default the model's context size.
            gen_batch_size: rows per `generate` call.
            score_batch_size: sequences per perplexity forward.
            seed: base seed; each sampling call uses the next one.
        """
        self.model, self.tok = model, tok
        self.max_length = context_length(model.config, tok, max_length)
        self.gen_batch_size, self.score_batch_size = gen_batch_size, score_batch_size
        self.seed, self.calls = seed, 0
        eos = {tok.eos_token_id} | _as_set(getattr(model.generation_config, "eos_token_id", None))
        self.eos_ids = sorted(e for e in eos if e is not None)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    def prompt_tokens(self, user: str) -> int:
        """Tokens of a chat-formatted user turn plus the assistant header."""
        return len(prompt_ids(self.tok, user))

    def text_tokens(self, text: str) -> int:
        """Tokens of a response (with its end-of-turn token)."""
        return len(response_ids(self.tok, text))

    def generate(self, users: Sequence[str], temperatures: Sequence[float], top_ps: Sequence[float],
                 budgets: Sequence[int], min_new_tokens: int = 0) -> list[tuple[str, bool]]:
        """Sample one reply per user turn with per-row settings.

        Returns:
            (text, finished) per row; rows whose prompt leaves no room in the
            context come back as ("", True).
        """
        from buckle.curation.method.generate import sample

        ids = [prompt_ids(self.tok, u) for u in users]
        room = [min(b, self.max_length - len(p)) for p, b in zip(ids, budgets)]
        live = [i for i, r in enumerate(room) if r >= MIN_BUDGET]
        out: list[tuple[str, bool]] = [("", True)] * len(users)
        if not live:
            return out
        self.calls += 1
        samples = sample(self.model, [ids[i] for i in live], [temperatures[i] for i in live],
                         [top_ps[i] for i in live], [room[i] for i in live], self.pad_id, self.eos_ids,
                         batch_size=self.gen_batch_size, seed=self.seed + self.calls,
                         min_new_tokens=min_new_tokens)
        for i, s in zip(live, samples):
            out[i] = (self.tok.decode(s.ids, skip_special_tokens=True), s.finished)
        return out

    def perplexity(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """Perplexity of each response given its chat-formatted prompt (length-bucketed batches)."""
        if not prompts:
            return []
        return perplexities(self.model, self.tok, prompts, responses,
                            batch_size=self.score_batch_size, max_length=self.max_length)


def _as_set(value: Any) -> set:
    if value is None:
        return set()
    return set(value) if isinstance(value, (list, tuple, set)) else {value}
