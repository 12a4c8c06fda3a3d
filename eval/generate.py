"""Batched chat generation: chat template, left padding, greedy by default.

Prompts are sorted by length so a batch wastes little padding, and results are
returned in input order. The pad token may equal the end-of-turn token (the
embedded model's does), so each output is cut at its first stop token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

Messages = list[dict[str, str]]


@dataclass
class Generation:
    """One decoded response and how many new tokens it took."""

    text: str
    tokens: int
    ids: list[int]


def load_model(path: str, dtype: str = "auto", device: str = "auto") -> tuple[Any, Any]:
    """Load (model, tokenizer) for inference; the tokenizer pads on the left.

    Args:
        path: local checkpoint directory or hub id.
        dtype: "auto" (bfloat16 on a CUDA GPU that supports it, else float32) or a torch dtype name.
        device: "auto", "cpu", "cuda", "cuda:1", ...
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        torch_dtype = torch.bfloat16 if cuda_bf16 else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device).eval()
    return model, tok


def chat(prompt: str, system: str | None = None) -> Messages:
    """A one-turn conversation, with an optional system message."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def encode(tok: Any, messages: Messages) -> list[int]:
    """Token ids of a conversation plus the assistant header."""
    out = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    return list(out)


def stop_ids(model: Any, tok: Any) -> set[int]:
    """Token ids that end a turn: the tokenizer's eos and the model's generation eos."""
    ids = {tok.eos_token_id}
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids |= set(eos) if isinstance(eos, (list, tuple)) else {eos}
    return {i for i in ids if i is not None}


def generate(model: Any, tok: Any, conversations: Sequence[Messages], max_new_tokens: int = 64,
             batch_size: int = 8, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
             exact_tokens: bool = False, progress: Any = False, desc: str = "generate") -> list[Generation]:
    """Generate one response per conversation, batched with left padding.

    Args:
        conversations: chat messages per item (see `chat`).
        temperature: 0 means greedy decoding; otherwise sampling with `top_p`.
        seed: sampling seed; batch b uses seed + b, so a rerun of the same inputs repeats.
        exact_tokens: always produce `max_new_tokens` tokens (for benchmarks).
        progress: True for a progress bar on stderr, or a tqdm bar to advance (one bar over chunks).
    """
    import torch
    from tqdm.auto import tqdm

    encoded = [encode(tok, m) for m in conversations]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    out: list[Generation | None] = [None] * len(encoded)
    stops = stop_ids(model, tok)
    gen_cfg = _gen_config(model, tok, max_new_tokens, temperature, top_p, exact_tokens, stops)
    device = next(model.parameters()).device
    own_bar = not hasattr(progress, "update")
    bar = tqdm(total=len(encoded), desc=desc, unit="prompt", disable=not progress) if own_bar else progress
    with torch.inference_mode():
        for b, start in enumerate(range(0, len(order), batch_size)):
            idx = order[start:start + batch_size]
            ids, mask = _left_pad([encoded[i] for i in idx], tok.pad_token_id)
            torch.manual_seed(seed + b)
            seqs = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                  generation_config=gen_cfg)
            for row, i in enumerate(idx):
                new = seqs[row, ids.shape[1]:].tolist()
                out[i] = _decode(tok, new, set() if exact_tokens else stops)
            bar.update(len(idx))
    if own_bar:
        bar.close()
    return out  # type: ignore[return-value]


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
