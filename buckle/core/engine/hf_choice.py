"""First-answer-token probabilities: how a judge model reads a yes/no (or any closed) question.

The answer is read from the next-token distribution right after the assistant
header, so no parsing of generated text can fail. Prompts are left-padded with
explicit position ids (each row's positions start at 0, as in an unbatched
forward), and only the last position is projected onto the vocabulary.
"""
from __future__ import annotations

from typing import Any, Sequence


def option_ids(tok: Any, option: str) -> list[int]:
    """First-token ids of an option's spellings ("yes", "Yes", " yes", " Yes", "YES"), deduplicated."""
    word = option.strip()
    ids: list[int] = []
    for form in (word, word.capitalize(), " " + word, " " + word.capitalize(), word.upper()):
        enc = tok(form, add_special_tokens=False)["input_ids"]
        if enc and enc[0] not in ids:
            ids.append(enc[0])
    return ids


def first_token_probs(model: Any, tok: Any, users: Sequence[str], options: Sequence[str],
                      system: str | None = None, batch_size: int = 8,
                      max_length: int | None = None) -> list[list[float]]:
    """Per prompt, the probability of each option at the first answer token (its spellings summed).

    Args:
        model, tok: a causal LM and its tokenizer (chat template).
        users: one user turn per prompt; the chat template and assistant header are applied.
        options: the answers to read, e.g. ["yes", "no"].
        system: optional system message before each user turn.
        batch_size: prompts per forward (length-sorted; results in input order).
        max_length: raise ValueError for a prompt longer than this many tokens.

    Returns:
        One list per prompt, one probability per option (softmax over the whole vocabulary, so
        the options need not sum to 1).
    """
    import torch

    from buckle.core.engine.hf_lm import prompt_ids

    seqs = [prompt_ids(tok, u, system) for u in users]
    for i, seq in enumerate(seqs):
        if max_length is not None and len(seq) > max_length:
            raise ValueError(f"users[{i}]: prompt is {len(seq)} tokens, longer than the limit {max_length}")
    wanted = [option_ids(tok, o) for o in options]
    for o, ids in zip(options, wanted):
        if not ids:
            raise ValueError(f"options: '{o}' has no tokens")
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    dev = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out: list[list[float]] = [[] for _ in seqs]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, width - len(seqs[i]):] = torch.tensor(seqs[i])
                mask[row, width - len(seqs[i]):] = 1
            # left padding shifts positions; give each row its own from 0, as generate does
            pos = (mask.cumsum(dim=1) - 1).clamp(min=0)
            logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                           logits_to_keep=1).logits[:, -1].float()
            probs = torch.softmax(logits, dim=-1)
            for row, i in enumerate(idx):
                out[i] = [probs[row, o].sum().item() for o in wanted]
    return out
