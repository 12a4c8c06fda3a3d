"""Safety notes and invented harms: what a rewrite may add, clause by clause.

A clause is a stretch of text between punctuation marks or "but", "although",
"though", "whereas". A clause in advice form ("always ...", "make sure ...",
"keep ... away", "wear gloves ...") tells the reader what to do; a clause that
names a hazard without that form claims something about the world. The
filter (faithfulness) takes the first kind as a safety note and rejects the
second when the original never named that hazard.
"""
from __future__ import annotations

import re
from typing import Sequence

from buckle.curation.method.scorers import SafetyScorer, stem, stem_sequence, words

_CLAUSE_SPLIT = re.compile(r"[.!?;:,]+|\s(?:but|although|though|whereas)\s", re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
# harms a rewrite may not invent (matched on stems); "harm" is a seed phrase too, so a harm claim
# carries a phrase: the advice form is what tells a note from a claim
HAZARDS = ("burn scald poison toxic toxin harm harmful hazard dangerous danger deadly lethal fatal kill die death "
           "injury injure hurt wound bleed cancer disease illness sick infection contamination allergic "
           "allergy choke explode explosion fire shock rash irritation").split()
_HAZARD_STEMS = frozenset(stem(w) for h in HAZARDS for w in words(h))
# advice forms: what a safety note says, as opposed to what it claims
ADVICE = re.compile(r"\b(?:always|never|be (?:very )?(?:careful|cautious|sure|mindful|aware)|take care|make sure|"
                    r"ensure|avoid|prevent|reduce the risk|consult|seek|wear|keep\b.*\baway|do not|don't|"
                    r"remember to|should|must|please)\b", re.IGNORECASE)
_IMPERATIVE = frozenset(("use wash wear keep store handle check turn unplug supervise stay protect place follow "
                         "watch ask call consult seek avoid clean test read").split())
_LEAD_IN = frozenset("and so then also just remember but".split())


def clauses(text: str) -> list[str]:
    """The clauses of a text: split at punctuation and at "but", "although", "though", "whereas"."""
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c.strip()]


def advice_form(clause: str) -> bool:
    """Whether a clause gives advice ("always ...", "make sure ...", "keep ... away") or opens with
    an imperative safety verb ("wear gloves ...", "and wash your hands ...")."""
    if ADVICE.search(clause):
        return True
    ws = [w.lower() for w in words(clause)]
    while ws and ws[0] in _LEAD_IN:
        ws = ws[1:]
    return bool(ws) and ws[0] in _IMPERATIVE


def invented_harms(candidate: str, known: set[str]) -> list[str]:
    """Clauses naming a hazard none of the known stems name, not in advice form: a harm the original
    never stated ("baking soda can be harmful if ingested")."""
    return [c for c in clauses(candidate)
            if (set(stem_sequence(c)) & _HAZARD_STEMS) - known and not advice_form(c)]


def safety_notes(candidate: str, unsupported: Sequence[str], phrases: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split unsupported clauses into safety notes and new facts.

    A note carries a seed phrase, or is in advice form in a sentence that carries one.

    Returns:
        (notes, facts), each in candidate order.
    """
    scorer = SafetyScorer(phrases)
    sentence_of = {c: s for s in _SENTENCE_SPLIT.split(candidate) for c in clauses(s)}
    notes, facts = [], []
    for clause in unsupported:
        note = scorer.carries(clause) or (advice_form(clause) and scorer.carries(sentence_of.get(clause, "")))
        (notes if note else facts).append(clause)
    return notes, facts
