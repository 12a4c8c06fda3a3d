"""The helpfulness rubric: relevance, clarity, comprehensiveness, usefulness, each 0-5.

One prompt and one parser, so the curation quality filter and the evaluation
report grade helpfulness the same way. A reply that does not give all four
scores within 0-5 does not parse: it is never read as a score.
"""
from __future__ import annotations

import json
import re

CRITERIA = ("relevance", "clarity", "comprehensiveness", "usefulness")
SYSTEM = "You are a careful evaluator of AI assistant answers. You follow the answer format exactly."
PROMPT = """Rate the AI assistant's response to the user's instruction on four criteria, each an integer from 0 (worst) to 5 (best):
relevance - does it address the instruction?
clarity - is it clear and well organized?
comprehensiveness - does it cover what the instruction needs?
usefulness - would it help the user?

[INSTRUCTION]
{instruction}

[RESPONSE]
{response}

Answer in exactly this format:
#reason: <one or two sentences>
#relevance: <0-5>
#clarity: <0-5>
#comprehensiveness: <0-5>
#usefulness: <0-5>"""


def helpfulness_messages(instruction: str, response: str) -> list[dict]:
    """The chat messages that ask a judge for the four scores of one response."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT.format(instruction=instruction, response=response)}]


def parse_helpfulness(reply: str) -> dict[str, float] | None:
    """The four 0-5 scores of a judge's reply; None unless all four are there and in range.

    Reads `#name: N` lines (the asked format; `name: N` or `name - N` too, last
    one wins) or, failing that, a JSON object with the four keys.
    """
    scores: dict[str, float] = {}
    for name in CRITERIA:
        found = re.findall(rf"\b{name}\s*[:=-]\s*(\d+(?:\.\d+)?)", reply, flags=re.IGNORECASE)
        if found:
            scores[name] = float(found[-1])
    if len(scores) < len(CRITERIA):
        scores = _from_json(reply)
    if len(scores) < len(CRITERIA) or not all(0.0 <= v <= 5.0 for v in scores.values()):
        return None
    return {name: scores[name] for name in CRITERIA}


def mean_helpfulness(scores: dict[str, float]) -> float:
    """Helpfulness: the mean of the four criteria."""
    return sum(scores[c] for c in CRITERIA) / len(CRITERIA)


def _from_json(reply: str) -> dict[str, float]:
    match = re.search(r"\{.*?\}", reply, re.DOTALL)
    if not match:
        return {}
    try:
        obj = json.loads(match.group(0))
        return {k.lower(): float(v) for k, v in obj.items() if k.lower() in CRITERIA}
    except (ValueError, TypeError, AttributeError):
        return {}
