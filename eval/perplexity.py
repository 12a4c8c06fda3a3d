"""Perplexity of reference answers given their instruction (benign helpfulness proxy).

Per text: exp(mean NLL of the response tokens, end-of-turn included, given the
chat-formatted instruction), padding masked. The computation is the engine's
(buckle.core.engine: hf_lm.response_nll, or vLLM's prompt logprobs).
"""
from __future__ import annotations

import math
from typing import Any, Sequence


def response_nll(model: Any, tok: Any, instructions: Sequence[str], responses: Sequence[str],
                 batch_size: int = 8, system: str | None = None) -> list[tuple[float, int]]:
    """Summed NLL (nats) and token count of each response given its instruction (hf model and tokenizer)."""
    from buckle.core.engine.hf_lm import response_nll as nll

    return nll(model, tok, instructions, responses, batch_size, None, system)


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp(mean NLL); nan for an empty response."""
    return math.exp(nll_sum / tokens) if tokens else math.nan
