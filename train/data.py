"""Stage mixing, chat formatting with an assistant-only label mask, and batching.

Labels are -100 everywhere except the assistant's tokens (its text and its
end-of-turn token). Masks come from lengths, never from pad ids: the embedded
tokenizer pads with its end-of-turn token, which must stay a label.
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, Callable, Sequence

from buckle.train.refusals import refusals_for
from buckle.train.sources import read_source


def build_mix(cfg: Any, read: Callable = read_source) -> tuple[list[dict], dict[str, int]]:
    """The stage's training records, shuffled with `cfg.data.seed`, and counts by origin.

    align: harmful prompts paired with varied refusals, plus benign pairs.
    pre/post: curated texts. during: user data plus round(curated_ratio x user)
    curated texts. attack: harmful pairs, plus benign pairs if given.
    """
    data, seed = cfg.data, cfg.data.seed
    counts: dict[str, int] = {"dropped": 0}

    def get(role: str, as_role: str | None = None) -> list[dict]:
        recs, dropped = read(getattr(data, role), as_role or role, seed)
        counts["dropped"] += dropped
        return recs

    if cfg.stage == "align":
        prompts = get("harmful", "prompts")
        for rec, text in zip(prompts, refusals_for(len(prompts), seed)):
            rec["response"] = text
        records = prompts + get("benign")
    elif cfg.stage in ("pre", "post"):
        records = get("curated")
    elif cfg.stage == "during":
        user = get("user")
        records = user + _take(get("curated"), round(data.curated_ratio * len(user)), seed)
    else:
        records = get("harmful") + (get("benign") if data.benign else [])
    random.Random(seed).shuffle(records)
    for rec in records:
        counts[rec["origin"]] = counts.get(rec["origin"], 0) + 1
    return records, counts


def _take(records: list[dict], n: int, seed: int) -> list[dict]:
    """n records in seeded order; cycles (repeats) when fewer exist than asked for."""
    if not records:
        return []
    order = list(records)
    random.Random(seed + 1).shuffle(order)
    reps = math.ceil(n / len(order))
    return [dict(r) for r in (order * reps)[:n]]


def chat_ids(tok: Any, messages: list[dict], generation_prompt: bool) -> list[int]:
    """Token ids of chat messages rendered with the model's own template."""
    out = tok.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    return list(out)


def encode(tok: Any, prompt: str, response: str, system: str | None = None,
           max_length: int = 256) -> dict | None:
    """input_ids/attention_mask/labels of one exchange; None if truncation leaves no label.

    The assistant part is what the full conversation adds after the prompt with
    the generation header, cut after the first end-of-turn token (templates may
    add a newline after it). If a template does not render the prompt as a
    prefix of the conversation, fall back to response tokens plus eos.
    """
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    head = chat_ids(tok, msgs, True)
    full = chat_ids(tok, msgs + [{"role": "assistant", "content": response}], False)
    eos = tok.eos_token_id
    if full[:len(head)] == head:
        answer = full[len(head):]
        if eos in answer:
            answer = answer[:answer.index(eos) + 1]
    else:
        answer = list(tok(response, add_special_tokens=False)["input_ids"]) + [eos]
    ids = (head + answer)[:max_length]
    if len(ids) <= len(head):
        return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids),
            "labels": [-100] * len(head) + ids[len(head):]}


def encode_all(tok: Any, records: Sequence[dict], system: str | None,
               max_length: int) -> tuple[list[dict], int]:
    """Encoded examples (with their record id) and how many were dropped by truncation."""
    out, dropped = [], 0
    for rec in records:
        ex = encode(tok, rec["prompt"], rec["response"], system, max_length)
        if ex is None:
            dropped += 1
            continue
        ex["id"] = rec["id"]
        out.append(ex)
    return out, dropped


class ListDataset:
    """A map-style dataset over a list (what the Trainer's sampler needs)."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class PadCollator:
    """Right-pads a batch: pad id for inputs, 0 for attention, -100 for labels.

    With `log_path`, appends the ids of each batch's examples (one line a batch)
    so a run can show which examples each rank trained on.
    """

    def __init__(self, pad_id: int, log_path: str | Path | None = None):
        self.pad_id = pad_id
        self.log_path = Path(log_path) if log_path else None

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        batch = {"input_ids": torch.full((len(features), width), self.pad_id, dtype=torch.long),
                 "attention_mask": torch.zeros((len(features), width), dtype=torch.long),
                 "labels": torch.full((len(features), width), -100, dtype=torch.long)}
        for row, f in enumerate(features):
            n = len(f["input_ids"])
            batch["input_ids"][row, :n] = torch.tensor(f["input_ids"])
            batch["attention_mask"][row, :n] = 1
            batch["labels"][row, :n] = torch.tensor(f["labels"])
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps([f.get("id") for f in features]) + "\n")
        return batch
