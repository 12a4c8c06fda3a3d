"""The HF backend's model layer: loading, chat ids, context length and masked response perplexity.

Moved here from curation (lm.py) and eval (perplexity.py), which had drifted
apart; both now use these functions through `buckle.core.engine`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence


def pick_device(device: str = "auto") -> str:
    """'cuda' when available for 'auto', else the given device or 'cpu'."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_lm(path: str, dtype: str = "auto", device: str = "auto") -> tuple[Any, Any]:
    """Load (model, tokenizer) in eval mode; the tokenizer pads on the left for generation.

    Args:
        path: local checkpoint directory or hub id.
        dtype: "auto" (bfloat16 on a CUDA GPU that supports it and on a CPU with AMX or
            avx512_bf16, else float32: buckle.core.precision) or a torch dtype name.
        device: "auto", "cpu", "cuda", "cuda:1", ...

    The model carries `buckle_dtype` = (dtype name, reason) for manifests.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from buckle.core.precision import resolve_dtype

    dev = pick_device(device)
    name, reason = resolve_dtype(dtype, dev)
    torch_dtype = getattr(torch, name)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(dev).eval()
    model.buckle_dtype = (name, reason)
    return model, tok


def context_length(config: Any, tok: Any = None, cap: int | None = None) -> int:
    """Tokens a sequence may hold: the model's position limit, else the tokenizer's (when
    sane), else 2048; at most `cap` (a config's max_length) when given."""
    limit = getattr(config, "max_position_embeddings", None)
    tok_limit = getattr(tok, "model_max_length", None)
    if not limit and tok_limit and tok_limit < 1_000_000:  # tokenizers without one say 1e30
        limit = tok_limit
    limit = int(limit or 2048)
    return min(cap, limit) if cap else limit


def chat(user: str, system: str | None = None) -> list[dict[str, str]]:
    """A one-turn conversation, with an optional system message."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def encode(tok: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a conversation plus the assistant header."""
    out = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(out, dict) or hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    return list(out)


def prompt_ids(tok: Any, user: str, system: str | None = None) -> list[int]:
    """Token ids of the chat-formatted user turn plus the assistant header."""
    return encode(tok, chat(user, system))


def stop_ids(model_config: Any, tok: Any) -> list[int]:
    """Token ids that end a turn: the tokenizer's eos and the model's generation eos, sorted."""
    eos = getattr(model_config, "eos_token_id", None)
    ids = {tok.eos_token_id} | (set(eos) if isinstance(eos, (list, tuple, set)) else {eos})
    return sorted(i for i in ids if i is not None)


def load_generation_config(path: str, config: Any) -> Any:
    """The checkpoint's generation config (its eos ids), else the model config where it has none."""
    try:
        from transformers import GenerationConfig

        return GenerationConfig.from_pretrained(path)
    except (OSError, ValueError):
        return config


def response_ids(tok: Any, response: str) -> list[int]:
    """Token ids of the response followed by the end-of-turn token."""
    ids = tok(response, add_special_tokens=False)["input_ids"]
    return list(ids) + ([tok.eos_token_id] if tok.eos_token_id is not None else [])


def perplexities(model: Any, tok: Any, prompts: Sequence[str], responses: Sequence[str],
                 batch_size: int = 8, max_length: int | None = None, system: str | None = None) -> list[float]:
    """Perplexity of each response given its chat-formatted prompt.

    exp(mean NLL over response tokens), padding masked; equals what
    `model(input_ids, labels=...)` reports when prompt labels are -100.
    Batches are length-bucketed (sorted) to waste little padding.
    """
    return [math.exp(s / max(n, 1)) for s, n in response_nll(model, tok, prompts, responses, batch_size,
                                                               max_length, system)]


def response_nll(model: Any, tok: Any, prompts: Sequence[str], responses: Sequence[str],
                 batch_size: int = 8, max_length: int | None = None,
                 system: str | None = None) -> list[tuple[float, int]]:
    """Summed NLL (nats) and token count of each response (end-of-turn included) given its prompt.

    Args:
        prompts, responses: one user turn and one reply per text.
        batch_size: sequences per forward (right-padded, length-sorted; results in input order).
        max_length: raise ValueError for a text longer than this many tokens.
        system: optional system message before each prompt.
    """
    import torch

    seqs = [pair_ids(tok, p, r, max_length, system) for p, r in zip(prompts, responses)]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    out: list[tuple[float, int]] = [(math.nan, 0)] * len(seqs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(seqs[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            labels = torch.full((len(idx), width), -100, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq, n_prompt = seqs[i]
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
                labels[row, n_prompt:len(seq)] = torch.tensor(seq[n_prompt:])
            sums, counts = _response_nll(model, ids.to(dev), mask.to(dev), labels.to(dev))
            for row, i in enumerate(idx):
                out[i] = (sums[row].item(), int(counts[row]))
    return out


_MASK_KEEP: dict = {}  # model class -> whether logits_to_keep takes a boolean mask


def _response_nll(model: Any, ids: Any, mask: Any, labels: Any) -> tuple[Any, Any]:
    """Summed NLL and token count per row, projecting onto the vocabulary only where a label follows."""
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100  # position t predicts token t+1
    targets = labels[:, 1:][keep[:, :-1]]
    logits = None
    if _MASK_KEEP.get(type(model), True):  # recent transformers take a boolean mask: only those rows' logits
        try:
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        except (TypeError, IndexError):  # older ones index with it and fail; remember, skip next time
            _MASK_KEEP[type(model)] = False
        if logits is not None and (logits.dim() != 2 or logits.shape[0] != targets.numel()):
            _MASK_KEEP[type(model)], logits = False, None
    if logits is None:  # an int keeps the last K positions: from the first response position on
        first = int(keep.any(dim=0).nonzero()[0]) if targets.numel() else ids.shape[1] - 1
        tail = ids.shape[1] - first
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=tail).logits[:, -tail:][keep[:, first:]]
    nll = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    rows = keep.nonzero()[:, 0]
    sums = torch.zeros(ids.shape[0], dtype=torch.float64, device=ids.device).index_add_(0, rows, nll.double())
    return sums, keep.sum(dim=1)


def pair_ids(tok: Any, prompt: str, response: str, max_length: int | None,
              system: str | None = None) -> tuple[list[int], int]:
    """(prompt + response token ids, where the response starts): what every backend scores, so they
    all see the same tokens.

    Raises:
        ValueError: the pair is longer than max_length.
    """
    p_ids = prompt_ids(tok, prompt, system)
    r_ids = response_ids(tok, response)
    seq = p_ids + r_ids
    if max_length is not None and len(seq) > max_length:
        raise ValueError(f"text is {len(seq)} tokens, longer than the limit {max_length}")
    return seq, len(p_ids)
