"""The HF backend's batched sampling, where every row has its own temperature and top-p.

One `generate` call covers many (prompt, temperature, top_p) rows: the
per-row settings live in a logits processor, so a whole round of candidates
costs a few batched calls instead of one call per candidate. Rows that share
a prompt (every grid pair of one beam member) share its prefill: the prompt
runs through the model once and its KV cache is copied to those rows.
"""
from __future__ import annotations

from typing import Any, Sequence

import inspect

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from buckle.core.engine.base import Sample



def _cache_arg(model: Any) -> str:
    """`cache` where the model's forward takes it (newer transformers 5), else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class PerRowSampling(LogitsProcessor):
    """Temperature then nucleus (top-p) filtering with one setting per batch row."""

    def __init__(self, temperatures: Sequence[float], top_ps: Sequence[float]):
        self.temperatures = torch.tensor(list(temperatures), dtype=torch.float32)
        self.top_ps = torch.tensor(list(top_ps), dtype=torch.float32)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Scale each row by its temperature and mask tokens outside its nucleus."""
        temps = self.temperatures.to(scores.device, scores.dtype)[:, None]
        scores = scores / temps
        sorted_logits, sorted_idx = scores.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the mass before it already reaches the row's top_p
        before = probs.cumsum(dim=-1) - probs
        remove = before >= self.top_ps.to(scores.device, probs.dtype)[:, None]
        remove[:, 0] = False  # always keep the most likely token
        mask = remove.scatter(1, sorted_idx, remove)
        return scores.masked_fill(mask, float("-inf"))


def sample(model: Any, prompts: Sequence[Sequence[int]], temperatures: Sequence[float],
           top_ps: Sequence[float], max_new_tokens: Sequence[int], pad_id: int,
           eos_ids: Sequence[int], batch_size: int = 64, seed: int | None = None,
           min_new_tokens: int = 0) -> list[Sample]:
    """Sample one continuation per row, batching rows of similar prompt length.

    Args:
        model: a causal LM.
        prompts: token ids of each row's prompt.
        temperatures, top_ps: per-row sampling settings.
        max_new_tokens: per-row token budget (a batch runs to its largest).
        pad_id: padding token id (prompts are left-padded).
        eos_ids: tokens that end a row.
        batch_size: rows per `generate` call.
        seed: seeds torch once before the first call, for reproducible runs.
        min_new_tokens: suppress end-of-sequence before this many tokens (benchmarks).

    Returns:
        One Sample per row, in input order.
    """
    if not (len(prompts) == len(temperatures) == len(top_ps) == len(max_new_tokens)):
        raise ValueError("prompts, temperatures, top_ps and max_new_tokens differ in length")
    if seed is not None:
        torch.manual_seed(seed)
    # similar lengths pad little; equal prompts side by side share a prefill
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), tuple(prompts[i])))
    out: list[Sample | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        rows = _generate(model, [prompts[i] for i in idx], [temperatures[i] for i in idx],
                         [top_ps[i] for i in idx], max(max_new_tokens[i] for i in idx),
                         pad_id, list(eos_ids), min_new_tokens)
        for i, ids in zip(idx, rows):
            out[i] = _cut(ids, eos_ids, max_new_tokens[i])
    return out  # type: ignore[return-value]


def _generate(model: Any, prompts: list[Sequence[int]], temps: list[float], top_ps: list[float],
              budget: int, pad_id: int, eos_ids: list[int], min_new: int) -> list[list[int]]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(list(p))
        mask[row, width - len(p):] = 1
    dev = next(model.parameters()).device
    ids, mask = ids.to(dev), mask.to(dev)
    cache = _shared_prefill(model, prompts, ids, mask)
    # neutral global settings: all sampling shape comes from the per-row processor
    gen_cfg = GenerationConfig(do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                               max_new_tokens=budget, min_new_tokens=min(min_new, budget),
                               pad_token_id=pad_id, eos_token_id=eos_ids)
    with torch.inference_mode():
        seqs = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen_cfg,
                              logits_processor=LogitsProcessorList([PerRowSampling(temps, top_ps)]),
                              **({_cache_arg(model): cache} if cache is not None else {}))
    return [row[width:].tolist() for row in seqs.cpu()]


def _shared_prefill(model: Any, prompts: list[Sequence[int]], ids: torch.Tensor, mask: torch.Tensor) -> Any:
    """KV cache of all but the last prompt token, computed once per distinct prompt; None if all differ."""
    slot: dict[tuple, int] = {}
    rows = [slot.setdefault(tuple(p), len(slot)) for p in prompts]
    if len(slot) == len(prompts) or ids.shape[1] < 2:
        return None
    first = [rows.index(u) for u in range(len(slot))]
    u_ids, u_mask = ids[first, :-1], mask[first, :-1]
    positions = (u_mask.cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
    with torch.inference_mode():
        out = model(input_ids=u_ids, attention_mask=u_mask, position_ids=positions, use_cache=True)
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = out.past_key_values
    cache.reorder_cache(torch.tensor(rows, device=ids.device))
    return cache


def _cut(ids: list[int], eos_ids: Sequence[int], limit: int) -> Sample:
    for pos, tok in enumerate(ids[:limit]):
        if tok in eos_ids:
            return Sample(ids[:pos], True)
    return Sample(ids[:limit], False)
