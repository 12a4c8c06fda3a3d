"""The engine interface: what curation and evaluation ask of a target model, whatever serves it.

Three backends implement it: `hf` (transformers, this project's batched
loops), `vllm` (continuous batching, paged KV cache, prefix caching, tensor
parallelism; in-process or served from its own environment) and `openai` (any
OpenAI-compatible completions server). All take token ids made by the same HF
tokenizer, so a prompt is the same sequence whichever backend decodes it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

Messages = list[dict[str, str]]


@dataclass
class Sample:
    """New token ids of one sampled row and whether it ended with end-of-sequence."""

    ids: list[int]
    finished: bool


@dataclass
class Generation:
    """One decoded response and how many new tokens it took."""

    text: str
    tokens: int
    ids: list[int]


class Engine(ABC):
    """A loaded target model: chat ids, per-row sampling, greedy chat generation, response perplexity.

    Attributes:
        name: the backend, "hf", "vllm" or "openai".
        tok: the model's HF tokenizer (chat template, decoding).
        max_length: tokens a sequence may hold.
        eos_ids: tokens that end a turn.
    """

    name = "engine"
    tok: Any
    max_length: int
    eos_ids: list[int]

    def prompt_ids(self, user: str, system: str | None = None) -> list[int]:
        """Token ids of the chat-formatted user turn plus the assistant header."""
        from buckle.core.engine.hf_lm import prompt_ids

        return prompt_ids(self.tok, user, system)

    def response_ids(self, text: str) -> list[int]:
        """Token ids of a response followed by the end-of-turn token."""
        from buckle.core.engine.hf_lm import response_ids

        return response_ids(self.tok, text)

    @abstractmethod
    def sample(self, prompts: Sequence[Sequence[int]], temperatures: Sequence[float], top_ps: Sequence[float],
               max_new_tokens: Sequence[int], seed: int | None = None, min_new_tokens: int = 0) -> list[Sample]:
        """Sample one continuation per row, each with its own temperature, top-p and token budget.

        Args:
            prompts: token ids of each row's prompt (rows may share one: they share its prefill).
            temperatures, top_ps, max_new_tokens: per-row settings.
            seed: the hf backend seeds torch before the call; in-process vllm seeds the run once at load;
                served backends seed row k with seed + k.
            min_new_tokens: suppress end-of-sequence before this many tokens (benchmarks).

        Returns:
            One Sample per row, in input order, its ids cut before the first stop token.
        """

    @abstractmethod
    def generate(self, conversations: Sequence[Messages], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, exact_tokens: bool = False,
                 progress: Any = False) -> list[Generation]:
        """One response per conversation; temperature 0 is greedy decoding.

        Args:
            exact_tokens: always produce max_new_tokens tokens (benchmarks).
            progress: True for a progress bar, or a tqdm bar to advance.
        """

    def greedy(self, conversations: Sequence[Messages], max_new_tokens: int,
               exact_tokens: bool = False) -> list[Generation]:
        """Greedy responses (evaluation's decoding)."""
        return self.generate(conversations, max_new_tokens, exact_tokens=exact_tokens)

    @abstractmethod
    def response_nll(self, prompts: Sequence[str], responses: Sequence[str],
                     system: str | None = None) -> list[tuple[float, int]]:
        """Summed NLL (nats) and token count of each response given its chat-formatted prompt.

        Only response positions count (end-of-turn included). Raises ValueError
        for a text longer than max_length.
        """

    def perplexity(self, prompts: Sequence[str], responses: Sequence[str],
                   system: str | None = None) -> list[float]:
        """exp(mean NLL of the response tokens) per text; nan for an empty response."""
        import math

        return [math.exp(s / n) if n else math.nan for s, n in self.response_nll(prompts, responses, system)]

    def first_token_probs(self, users: Sequence[str], options: Sequence[str],
                          system: str | None = None) -> list[list[float]]:
        """Per chat-formatted user turn, the probability of each option at the first answer token.

        Each option's spellings ("yes", "Yes", " yes") are summed; a judge reads P(yes) from this.

        Raises:
            NotImplementedError: the backend does not read next-token probabilities.
        """
        raise NotImplementedError(f"engine '{self.name}': first_token_probs is not implemented for this backend")

    def describe(self) -> dict[str, Any]:
        """What a run manifest records about the engine."""
        return {"backend": self.name, "max_length": self.max_length}

    def close(self) -> None:
        """Free the model (vLLM's worker process or server); hf and openai have nothing to stop."""
