"""Safety notes and invented harms: what a rewrite may add, clause by clause.

A clause is a stretch of text between punctuation marks or "but", "although",
"though", "whereas". A clause in advice form ("always ...", "make sure ...",
"keep ... away", "wear gloves ...") tells the reader what to do; a clause that
names a hazard without that form claims something about the world. The
filter (faithfulness) takes the first kind as a safety note and rejects the
second when the original never named that hazard.

Under amplify a rewrite must add a note (`added_notes`): a clause of at least
NOTE_MIN_WORDS words in advice form, in a sentence the original lacks that
carries a seed phrase in a clause of mostly new words ("Remember to unplug
the lamp and handle the bulb with care"). A phrase word inside the original's
own steps ("carefully pull them apart", "protect against mildew") is no note. Two kinds of added text are
rejected outright: a list of bare phrases ("Consider others, safety,
privacy.") and letters of a script the original does not use (a stray "汁" in
English text).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from buckle.curation.method.scorers import SafetyScorer, stem, stem_sequence, words

# words too common to carry content: left out when texts are compared by their content stems
STOPWORDS = frozenset((
    "a an the and or but if then than so as of at by for from in into on onto to with without about above "
    "below over under up down out off again further once here there when where why how what which who whom "
    "this that these those am is are was were be been being have has had having do does did doing will would "
    "shall should can could may might must not no nor only own same too very just also more most much many "
    "some any each every all both few other such it its itself they them their theirs you your yours he him "
    "his she her hers we us our ours i me my mine let lets get gets make makes like well way ways thing things "
    "usually often always sometimes while before after until because through during between around".split()))
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
                    r"remember to|should|must|please|it(?:'s| is) (?:important|essential|crucial|best) to)\b",
                    re.IGNORECASE)
_IMPERATIVE = frozenset(("use wash wear keep store handle check turn unplug supervise stay protect place follow "
                         "watch ask call consult seek avoid clean test read").split())
_LEAD_IN = frozenset("and so then also just remember but".split())
NOTE_MIN_WORDS = 3  # "Stay safe" names the idea; a note says what to do about it
LIST_ITEM_MAX_WORDS = 2  # two clauses this short in a sentence, each a phrase, recite the phrases


def content_stems(text: str) -> set[str]:
    """Stems of the content words of a text (stopwords and words under 3 letters left out)."""
    return {stem(w) for w in words(text) if len(w) >= 3 and w.lower() not in STOPWORDS}


def clauses(text: str) -> list[str]:
    """The clauses of a text: split at punctuation and at "but", "although", "though", "whereas"."""
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c.strip()]


def advice_form(clause: str) -> bool:
    """Whether a clause gives advice ("always ...", "make sure ...", "keep ... away") or opens with
    an imperative safety verb ("wear gloves ...", "and wash your hands ...")."""
    if ADVICE.search(clause):
        return True
    ws = _lead_stripped(clause)
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


def norm_words(text: str) -> str:
    """The text's words, lower-cased and single-spaced: for "is this passage in that one" checks."""
    return " ".join(w.lower() for w in words(text))


def added_notes(candidate: str, phrases: Sequence[str], original: str = "", instruction: str = "") -> list[str]:
    """Clauses of the candidate that make a safety note of its own: in advice form, at least
    NOTE_MIN_WORDS words, in a sentence the original lacks that carries a seed phrase in a clause
    of mostly new words (the clause itself, or "Remember, safety is crucial: wear gloves ...").
    A phrase in a clause made of the original's or the question's words ("carefully pull them
    apart", "To reset the breaker safely") makes no note. original="" asks for a text's own notes."""
    scorer, said = SafetyScorer(phrases), norm_words(original)
    known = content_stems(original) | content_stems(instruction)
    out = []
    for sentence in _SENTENCE_SPLIT.split(candidate):
        if said and norm_words(sentence) in said:
            continue
        parts = clauses(sentence)
        if any(scorer.carries(p) and _mostly_new(p, known) for p in parts):
            out += [p for p in parts if len(words(p)) >= NOTE_MIN_WORDS and advice_form(p)]
    return out


def _mostly_new(clause: str, known: set[str]) -> bool:
    stems = content_stems(clause)
    return bool(stems) and len(stems - known) / len(stems) > 0.5


def phrase_lists(candidate: str, phrases: Sequence[str], original: str = "") -> list[str]:
    """Sentences the original lacks that list phrases: two or more clauses of at most
    LIST_ITEM_MAX_WORDS words (after a lead-in such as "and") that carry a seed phrase
    ("Safe, respect.", "Remember to do no harm, supervise, and respect privacy.")."""
    scorer, said = SafetyScorer(phrases), norm_words(original)
    out = []
    for sentence in _SENTENCE_SPLIT.split(candidate):
        bare = [p for p in clauses(sentence) if len(_lead_stripped(p)) <= LIST_ITEM_MAX_WORDS and scorer.carries(p)]
        if len(bare) >= 2 and norm_words(sentence) not in said:
            out.append(sentence.strip())
    return out


def _lead_stripped(clause: str) -> list[str]:
    ws = [w.lower() for w in words(clause)]
    while ws and ws[0] in _LEAD_IN:
        ws = ws[1:]
    return ws


def foreign_letters(candidate: str, original: str = "") -> list[str]:
    """Letters of a non-Latin script in the candidate but not in the original: the reviser slipping
    into another language mid-sentence."""
    return sorted({ch for ch in candidate if ch.isalpha() and ch not in original
                   and not unicodedata.name(ch, "").startswith("LATIN")})
