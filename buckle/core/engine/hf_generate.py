"""The HF backend's batched chat generation: chat template, left padding, greedy by default.

Prompts are sorted by length so a batch wastes little padding, and results are
returned in input order. The pad token may equal the end-of-turn token (the
embedded model's does), so each output is cut at its first stop token. Greedy
batches run through the project's decode loop (hf_sample: KV buffers written
in place, the prompts' common opening prefilled once; the same tokens as
`generate`, 1.11-1.16x less CPU time at 135M in float32, bench/decode_loop.py);
sampling stays on transformers' `generate`, whose seed-per-batch runs repeat.
"""
from __future__ import annotations

from typing import Any, Sequence

from buckle.core.engine.base import Generation
from buckle.core.engine.hf_lm import encode, stop_ids

Messages = list[dict[str, str]]


def generate(model: Any, tok: Any, conversations: Sequence[Messages], max_new_tokens: int = 64,
             batch_size: int = 8, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             exact_tokens: bool = False, progress: Any = False, desc: str = "generate",
             via_generate: bool = False) -> list[Generation]:
    """Generate one response per conversation, batched with left padding.

    Args:
        conversations: chat messages per item (see `chat`).
        temperature: 0 means greedy decoding; otherwise sampling with `top_p`.
        seed: sampling seed; batch b uses seed + b, so a rerun of the same inputs repeats.
        exact_tokens: always produce `max_new_tokens` tokens (for benchmarks).
        progress: True for a progress bar on stderr, or a tqdm bar to advance (one bar over chunks).
        via_generate: decode greedy batches with transformers' `generate` too (benchmarks compare).
    """
    import torch
    from tqdm.auto import tqdm

    encoded = [encode(tok, m) for m in conversations]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    out: list[Generation | None] = [None] * len(encoded)
    stops = set(stop_ids(model.generation_config, tok))
    gen_cfg = _gen_config(model, tok, max_new_tokens, temperature, top_p, exact_tokens, stops)
    device = next(model.parameters()).device
    own_bar = not hasattr(progress, "update")
    bar = tqdm(total=len(encoded), desc=desc, unit="prompt", disable=not progress) if own_bar else progress
    with torch.inference_mode():
        for b, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start:start + batch_size]
            if temperature > 0 or via_generate:
                ids, mask = _left_pad([encoded[i] for i in idx], tok.pad_token_id)
                torch.manual_seed(seed + b)
                seqs = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                      generation_config=gen_cfg)
                news = [seqs[row, ids.shape[1]:].tolist() for row in range(len(idx))]
            else:
                news = _greedy(model, [encoded[i] for i in idx], max_new_tokens, gen_cfg.pad_token_id,
                               sorted(stops), exact_tokens)
            for i, new in zip(idx, news):
                out[i] = _decode(tok, new, set() if exact_tokens else stops)
            bar.update(len(idx))
    if own_bar:
        bar.close()
    return out  # type: ignore[return-value]


def _greedy(model: Any, prompts: list[list[int]], max_new_tokens: int, pad_id: int, stops: list[int],
            exact_tokens: bool) -> list[list[int]]:
    """One batch's greedy continuations through the project's decode loop, each cut at its first stop."""
    from buckle.core.engine.hf_sample import sample

    n = len(prompts)
    # exact_tokens suppresses the stops, as generate's min_new_tokens does, so rows take their next likeliest token
    rows = sample(model, prompts, [0.0] * n, [1.0] * n, [max_new_tokens] * n, pad_id, stops, batch_size=n,
                  min_new_tokens=max_new_tokens if exact_tokens else 0)
    return [r.ids for r in rows]


def _gen_config(model: Any, tok: Any, max_new_tokens: int, temperature: float, top_p: float,
                exact_tokens: bool, stops: set[int]) -> Any:
    from transformers import GenerationConfig

    sample = temperature > 0
    return GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens if exact_tokens else None,
        do_sample=sample, temperature=temperature if sample else None, top_p=top_p if sample else None,
        top_k=None, pad_token_id=tok.pad_token_id, eos_token_id=sorted(stops) or None,
        bos_token_id=getattr(model.generation_config, "bos_token_id", None))


def _left_pad(seqs: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids, mask


def _decode(tok: Any, new: list[int], stops: set[int]) -> Generation:
    cut = next((k for k, t in enumerate(new) if t in stops), len(new))
    text = tok.decode(new[:cut], skip_special_tokens=True).strip()
    return Generation(text=text, tokens=cut, ids=new[:cut])
