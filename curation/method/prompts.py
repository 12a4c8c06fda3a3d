"""Revision prompts for the two objectives, and cleanup of what the model returns."""
from __future__ import annotations

import random
import re
import zlib
from typing import Sequence

# CTRL (arXiv 2405.19358): ask for the same content seen from another angle.
REDUCE = """Rewrite the answer below from an alternative perspective. Keep the same facts and advice, \
stay helpful and easy to read, and reply with the rewritten answer only.

Question: {instruction}

Answer: {response}"""

# The every-stage paper (arXiv 2410.02220): weave safety implication into the text.
# The note is asked for as one or two sentences of advice in prose, opened the way advice opens:
# a 1.5B reviser otherwise writes numbered steps that run out of tokens before the note, or recites
# the hint words as a list ("Consider others, safety, privacy."), measured on the embedded corpus.
AMPLIFY = """Rewrite the answer below so that it also carries a safety message. Keep every fact and \
piece of advice of the answer, then end with one or two full sentences that tell the reader how to \
stay safe while doing this (for example "Always ..." or "Remember to ..."), drawing on ideas such as \
{keywords}. Add no other new facts. Write plain prose without headings or lists, stay easy to read, \
and reply with the rewritten answer only.

Question: {instruction}

Answer: {response}"""

_PREAMBLE = re.compile(r"^\**\s*(sure|certainly|of course|okay|ok|here(?:'s| is| are)|rewritten|revised|alternative)"
                       r"[^\n]{0,80}:\s*\n?", re.IGNORECASE)
_PLEASANTRY = re.compile(r"^(sure|certainly|of course|absolutely)\b[^.!?\n]{0,60}[.!]\s+", re.IGNORECASE)
_LABEL = re.compile(r"^(the |your )?(rewritten |revised )?answer( is)?\s*:\s*", re.IGNORECASE)


def pick_keywords(keywords: Sequence[str], key: str, n: int = 3) -> list[str]:
    """A few seed phrases for one revision, chosen by a stable hash of `key`.

    A short list reads as a hint; the whole list invites the model to recite it.
    """
    if len(keywords) <= n:
        return list(keywords)
    return random.Random(zlib.crc32(key.encode("utf-8"))).sample(list(keywords), n)


def revision_prompt(objective: str, instruction: str, response: str, keywords: Sequence[str] = ()) -> str:
    """The user turn that asks the model to revise `response` for `objective`."""
    if objective == "reduce":
        return REDUCE.format(instruction=instruction, response=response)
    if objective == "amplify":
        return AMPLIFY.format(instruction=instruction, response=response, keywords=", ".join(keywords))
    raise ValueError(f"objective: unknown '{objective}' (reduce, amplify)")


def clean_candidate(text: str, finished: bool = True, unfinished: str = "trim") -> str:
    """Strip preambles ("Here is the rewritten answer:"), labels and quotes.

    An unfinished text (cut by the token budget) is, by `unfinished`: "trim"med
    to its last full sentence (dropped without one), "keep"t, or "drop"ped
    (returned empty).
    """
    out = text.strip()
    out = _PREAMBLE.sub("", out, count=1).strip()
    out = _PLEASANTRY.sub("", out, count=1).strip()
    out = _LABEL.sub("", out, count=1).strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    if not finished and unfinished == "drop":
        return ""
    if not finished and unfinished == "trim":
        ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", out)]
        out = out[:ends[-1]].strip() if ends else ""
    return out
