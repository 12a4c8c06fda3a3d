"""Perplexity of reference answers given their instruction (benign helpfulness proxy).

Per text: exp(mean NLL of the response tokens, end-of-turn included, given the
chat-formatted instruction), padding masked - what `model(labels=...)` reports
when the prompt's labels are -100. Deterministic and offline.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from buckle.eval.generate import chat, encode


def response_nll(model: Any, tok: Any, instructions: Sequence[str], responses: Sequence[str],
                 batch_size: int = 8, system: str | None = None) -> list[tuple[float, int]]:
    """Summed NLL (nats) and token count of each response given its instruction.

    Batches are right-padded and length-sorted; results come back in input order.
    """
    import torch

    seqs = [_pair(tok, i, r, system) for i, r in zip(instructions, responses)]
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k][0]))
    out: list[tuple[float, int]] = [(math.nan, 0)] * len(seqs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(seqs[k][0]) for k in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            labels = torch.full((len(idx), width), -100, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, k in enumerate(idx):
                seq, n_prompt = seqs[k]
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
                labels[row, n_prompt:len(seq)] = torch.tensor(seq[n_prompt:])
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            targets = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets,
                                                    ignore_index=-100, reduction="none")
            for row, k in enumerate(idx):
                out[k] = (nll[row].sum().item(), int((targets[row] != -100).sum().item()))
    return out


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp(mean NLL); nan for an empty response."""
    return math.exp(nll_sum / tokens) if tokens else math.nan


def _pair(tok: Any, instruction: str, response: str, system: str | None) -> tuple[list[int], int]:
    # Left padding is for generation; here every row starts at position 0.
    p_ids = encode(tok, chat(instruction, system))
    r_ids = list(tok(response, add_special_tokens=False)["input_ids"])
    if tok.eos_token_id is not None:
        r_ids.append(tok.eos_token_id)
    return p_ids + r_ids, len(p_ids)
