"""The `hf` backend: transformers with this project's batched loops (the CPU default).

Sampling shares each distinct prompt's prefill and applies per-row
temperature/top-p in one logits processor (hf_sample); generation left-pads
length-sorted batches (hf_generate); perplexity projects onto the vocabulary
only at response positions (hf_lm).
"""
from __future__ import annotations

from typing import Any, Sequence

from buckle.core.engine.base import Engine, Generation, Messages, Sample


class HFEngine(Engine):
    """A loaded HF model behind the engine interface.

    Args:
        model, tok: a causal LM and its tokenizer (hf_lm.load_lm), or use `HFEngine.load`.
        max_length: token cap per sequence; default the model's context size.
        gen_batch_size: rows per `generate` call.
        score_batch_size: sequences per perplexity forward.
    """

    name = "hf"

    def __init__(self, model: Any, tok: Any, max_length: int | None = None, gen_batch_size: int = 64,
                 score_batch_size: int = 16):
        from buckle.core.engine.hf_lm import context_length, stop_ids

        self.model, self.tok = model, tok
        self.max_length = context_length(model.config, tok, max_length)
        self.gen_batch_size, self.score_batch_size = gen_batch_size, score_batch_size
        self.eos_ids = stop_ids(model.generation_config, tok)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def load(cls, path: str, dtype: str = "auto", device: str = "auto", **kwargs: Any) -> "HFEngine":
        """Load a checkpoint (local dir or hub id) and wrap it; kwargs go to the constructor."""
        from buckle.core.engine.hf_lm import load_lm

        return cls(*load_lm(path, dtype, device), **kwargs)

    def sample(self, prompts: Sequence[Sequence[int]], temperatures: Sequence[float], top_ps: Sequence[float],
               max_new_tokens: Sequence[int], seed: int | None = None, min_new_tokens: int = 0) -> list[Sample]:
        """See Engine.sample; rows of similar length are batched gen_batch_size at a time."""
        from buckle.core.engine.hf_sample import sample

        return sample(self.model, prompts, temperatures, top_ps, max_new_tokens, self.pad_id, self.eos_ids,
                      batch_size=self.gen_batch_size, seed=seed, min_new_tokens=min_new_tokens)

    def generate(self, conversations: Sequence[Messages], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, exact_tokens: bool = False,
                 progress: Any = False) -> list[Generation]:
        """See Engine.generate; batches of gen_batch_size prompts."""
        from buckle.core.engine.hf_generate import generate

        return generate(self.model, self.tok, conversations, max_new_tokens, self.gen_batch_size, temperature,
                        top_p, seed, exact_tokens=exact_tokens, progress=progress)

    def response_nll(self, prompts: Sequence[str], responses: Sequence[str],
                     system: str | None = None) -> list[tuple[float, int]]:
        """See Engine.response_nll; batches of score_batch_size sequences."""
        from buckle.core.engine.hf_lm import response_nll

        if not prompts:
            return []
        return response_nll(self.model, self.tok, prompts, responses, self.score_batch_size,
                            self.max_length, system)

    def first_token_probs(self, users: Sequence[str], options: Sequence[str],
                          system: str | None = None) -> list[list[float]]:
        """See Engine.first_token_probs; batches of score_batch_size prompts."""
        from buckle.core.engine.hf_choice import first_token_probs

        if not users:
            return []
        return first_token_probs(self.model, self.tok, users, options, system, self.score_batch_size,
                                 self.max_length)

    def describe(self) -> dict[str, Any]:
        """Backend, context, device and dtype."""
        param = next(self.model.parameters())
        reason = getattr(self.model, "buckle_dtype", (None, "given"))[1]
        return {**super().describe(), "device": str(param.device), "dtype": str(param.dtype).replace("torch.", ""),
                "dtype_reason": reason}
