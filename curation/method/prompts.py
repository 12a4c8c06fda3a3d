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

# revise "note": the reviser writes only the note, and the candidate is the original answer, verbatim,
# with the note after it, so a small reviser cannot lose a fact of the answer on the way.
NOTE = """Below is a question and its answer. Write one or two full sentences of safety advice to add at \
the end of the answer: tell the reader how to stay safe while doing this (for example "Always ..." or \
"Remember to ..."), drawing on ideas such as {keywords}. The advice must fit the question. Add no other \
facts, numbers or steps, write plain prose, and reply with the added sentences only.

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


def note_prompt(instruction: str, response: str, keywords: Sequence[str] = ()) -> str:
    """The user turn that asks the model for a safety note to append to `response` (revise "note")."""
    return NOTE.format(instruction=instruction, response=response, keywords=", ".join(keywords))


def with_note(original: str, note: str) -> str:
    """The original answer, verbatim, with the note after it; "" when the note adds nothing.

    A note that opens by repeating the answer (the model echoing it) keeps only what follows.
    """
    note = note.strip()
    if note.startswith(original.strip()):
        note = note[len(original.strip()):].strip()
    return f"{original.rstrip()} {note}" if note else ""


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
