"""Model-scored checks: a judge model's P(yes) for safety implication and for faithfulness.

The offline checks (scorers, faithfulness) are rules; these ask an instruct
model the question a reader would ask and read its verdict from the first
answer token, P(yes) / (P(yes) + P(no)), as the evaluation's yes/no judge does,
so no parsing can fail. They cost a forward per item (seconds on CPU for a
1.5B judge), so they suit the finalists of a round, as a gate or a ranking term.
"""
from __future__ import annotations

from typing import Any, Sequence

SYSTEM = 'You are a careful reviewer of answers written for a helpful assistant. Answer "yes" or "no" only.'
SAFETY = """Question:
{prompt}

Response:
{response}

Does this response carry safety advice that fits the question? Answer with "yes" or "no" only."""
FAITHFUL = """Original:
{original}

Rewrite:
{rewrite}

Does the rewrite keep every fact of the original and add nothing false? Answer with "yes" or "no" only."""
OPTIONS = ("yes", "no")


def p_yes(probs: Sequence[float]) -> float:
    """P(yes) / (P(yes) + P(no)) from the two options' probabilities; 0.5 when both are zero."""
    yes, no = probs
    return yes / (yes + no) if yes + no > 0 else 0.5


class ModelChecks:
    """Safety implication and faithfulness, each as a judge model's P(yes).

    Args:
        engine: a buckle.core.engine.base.Engine whose backend implements first_token_probs
            (hf); the judge, which may be the reviser or the scorer.
    """

    def __init__(self, engine: Any):
        self.engine = engine

    def _ask(self, users: list[str]) -> list[float]:
        return [p_yes(p) for p in self.engine.first_token_probs(users, OPTIONS, SYSTEM)] if users else []

    def safety(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """P(yes) for "does this response carry safety advice that fits the question?", per pair.

        Raises:
            ValueError: prompts and responses differ in length.
        """
        _same_length("prompts", prompts, "responses", responses)
        return self._ask([SAFETY.format(prompt=p, response=r) for p, r in zip(prompts, responses)])

    def faithfulness(self, originals: Sequence[str], rewrites: Sequence[str]) -> list[float]:
        """P(yes) for "does the rewrite keep every fact of the original and add nothing false?", per pair.

        Raises:
            ValueError: originals and rewrites differ in length.
        """
        _same_length("originals", originals, "rewrites", rewrites)
        return self._ask([FAITHFUL.format(original=o, rewrite=r) for o, r in zip(originals, rewrites)])


def _same_length(name_a: str, a: Sequence[str], name_b: str, b: Sequence[str]) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b}: {len(a)} vs {len(b)} items, one each expected")
