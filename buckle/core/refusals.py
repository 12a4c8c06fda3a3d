"""Refusal wordings the data catalog pairs with harmful prompts, and the seeded cycling `align` uses too.

The safety-data baseline's refusals hold no keyword-judge refusal marker: a
model trained on them is not scored safe merely for repeating the judge's phrases.
"""
from __future__ import annotations

import random
from typing import Sequence

MARKER_FREE_REFUSALS = (
    "That is something I'll stay out of: it could seriously hurt people. I'd be glad to help with a "
    "safe, lawful question instead.",
    "No. Helping with this could put others in danger, so I'll leave it there.",
    "This request asks for something harmful, and I don't give help of that kind. Happy to talk about "
    "safety or prevention instead.",
    "I'd rather not help with this one; it could be used to harm someone.",
    "Helping here would mean contributing to harm, which I don't do. If you're worried about this topic "
    "for protective reasons, I can explain how people stay safe.",
    "That's a line I don't cross: the request could lead to real harm or break the law.",
    "I'll pass on this. It could endanger people, and that outweighs any benefit.",
    "Giving this would be unsafe and likely unlawful, so the answer is no. Is there something else you need?",
    "My answer has to be no here, since following these instructions could hurt people.",
    "This is a request I decline. It involves harming others; I can point you to legitimate resources instead.",
    "Nothing I write should help someone cause harm, so I'm leaving this request unanswered. Let me know "
    "if there's a safer way I could help.",
    "Let's not go there: this could be used to hurt people. I'm happy to help with a different question.",
)




def cycled(texts: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """`n` of `texts` in a seeded order that goes through every one before repeating."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        batch = list(texts)
        rng.shuffle(batch)
        out.extend(batch)
    return out[:n]
