"""Faithfulness: a revision must stay the original's answer, in other words.

Text statistics pass fluent nonsense; these offline checks catch the kinds seen
in curated output: lost content, invented quantities, an added claim the
original never made ("... but mulch can make your skin burn"), and meta text
("here's a rewritten version", an echoed question). Words are compared as
Snowball stems (scorers.stem).

The two objectives differ in what a candidate may add:

- `reduce` (CTRL) keeps the original's content: few new words overall
  (<= MAX_NEW) and no clause made mostly of new words ("unsupported").
- `amplify` (arXiv 2410.02220) exists to add a safety note, so an unsupported
  clause passes only as one: it carries a seed safety phrase itself, or it is
  in advice form ("wear gloves when ...") in a sentence that carries one
  ("Remember, safety is crucial: wear gloves when ..."). Any other new clause
  is a new fact. max_new, when given, bounds the new words outside the notes.

Under both, a clause that names a hazard (notes.HAZARDS: burn, poison, toxic, harm,
kill, ...) the original and the question never named, without an advice form
(notes.ADVICE: "always", "never", "be careful", "make sure", "avoid", "wear",
"keep ... away", "consult", or an imperative safety verb first), asserts an
invented harm: "baking soda can be harmful if ingested" is rejected, "be
careful not to burn yourself" is a safety note. A reason clause ("..., as it
can cause a fire") counts as a harm too: the filter cannot check it, so it does
not take it. Also rejected under both: a sentence that only lists phrases ("Safe,
respect.") and letters of a script the original does not use (notes.phrase_lists,
notes.foreign_letters).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from buckle.curation.method.notes import (clauses, content_stems, foreign_letters, invented_harms, norm_words,
                                         phrase_lists, safety_notes)
from buckle.curation.method.scorers import load_safety_phrases, stem_sequence, words

# Thresholds tuned on the nonsense revisions and the quickstart's curated pairs
# (tests/curation/test_curation_faithfulness.py) and on candidates the embedded model wrote; paraphrases pass.
MIN_KEPT = 0.4  # share of the original's content words (stemmed) the candidate keeps
MAX_NEW = 0.45  # share of the candidate's content words found in neither original, instruction nor keywords
CLAUSE_MIN_WORDS = 3  # a clause this long (content words) can carry a claim of its own
CLAUSE_MAX_NEW = 0.6  # ... and one with more new content words than this is a claim the original never made
CLAUSE_MIN_KEPT = 0.5  # keep_clauses: an original clause that keeps fewer of its content words is dropped
_NUMBER_WORDS = frozenset((
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion half quarter third dozen twice double triple").split())
_UNITS = frozenset((
    "second minute hour day week month year teaspoon tablespoon tbsp tsp cup pint quart gallon ounce oz pound "
    "lb gram kilogram kg mg ml liter litre milliliter degree percent inch foot feet mile meter metre "
    "centimeter cm mm yard calorie dose pill glass spoon pinch").split())
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)  # "1. Rinse ...": numbering, not a quantity
# the rewriting prompt's own vocabulary leaking into the answer
_META = re.compile(r"\b(?:rewrit\w*|revis\w*|paraphras\w*|question\s*:|answer\s*:|"
                   r"here(?:'s| is) (?:(?:a|an|the|my) )?(?:\w+ )?(?:version|rewrite|answer|response)|"
                   r"(?:original|above) (?:text|answer|response))", re.IGNORECASE)


def quantities(text: str) -> set[str]:
    """Numbers (digits, number words) and units of measure a text mentions, normalised."""
    found = {d.replace(",", "") for d in _DIGITS.findall(_LIST_MARKER.sub(" ", text))}
    for w in words(text):
        low = w.lower()
        unit = low[:-1] if low.endswith("s") and low[:-1] in _UNITS else low
        if low in _NUMBER_WORDS or unit in _UNITS:
            found.add(unit)
    return found


def meta_text(original: str, candidate: str, instruction: str = "") -> list[str]:
    """Prompt vocabulary ("rewritten", "Answer:") in the candidate but in neither original nor instruction,
    plus "echoed question" when the candidate repeats the instruction the original does not."""
    known = f"{original}\n{instruction}".lower()
    found = sorted({m.group(0).lower() for m in _META.finditer(candidate) if m.group(0).lower() not in known})
    q = norm_words(instruction)
    if len(q.split()) >= 4 and q in norm_words(candidate) and q not in norm_words(original):
        found.append("echoed question")
    return found


def unsupported_clauses(candidate: str, known: set[str]) -> list[str]:
    """Clauses of the candidate with at least CLAUSE_MIN_WORDS content words, most of them (> CLAUSE_MAX_NEW)
    in none of the known stems: a claim of its own, however small its share of the whole text."""
    out = []
    for clause in clauses(candidate):
        stems = content_stems(clause)
        if len(stems) >= CLAUSE_MIN_WORDS and len(stems - known) / len(stems) > CLAUSE_MAX_NEW:
            out.append(clause)
    return out


def dropped_clauses(original: str, candidate: str, instruction: str = "") -> list[str]:
    """Clauses of the original with at least CLAUSE_MIN_WORDS content words of which the candidate
    (with the question) keeps fewer than CLAUSE_MIN_KEPT: a fact or step the rewrite lost
    ("Prune roses in late winter, just as the buds begin to swell" -> "... to prepare them")."""
    kept = content_stems(candidate) | content_stems(instruction)
    out = []
    for clause in clauses(original):
        stems = content_stems(clause)
        if len(stems) >= CLAUSE_MIN_WORDS and len(stems & kept) / len(stems) < CLAUSE_MIN_KEPT:
            out.append(clause)
    return out


def _known(original: str, instruction: str, keywords: Sequence[str]) -> set[str]:
    # content a candidate may use without it counting as new
    return content_stems(original) | content_stems(instruction) | {s for k in keywords for s in content_stems(k)}


def faithfulness(original: str, candidate: str, instruction: str = "",
                 keywords: Sequence[str] = ()) -> dict[str, Any]:
    """How far a candidate stays the original's answer.

    Returns:
        kept: share of the original's content stems the candidate keeps; new: share of the
        candidate's content stems in none of original, instruction and keywords; new_quantities:
        numbers or units the candidate introduces (in neither original nor instruction);
        unsupported: clauses made mostly of new content words; harms: clauses naming a hazard
        the original and instruction never name, not in advice form; meta: prompt vocabulary
        or an echoed question; lists: added sentences that only list safety phrases; foreign:
        letters of a script the original does not use; dropped: clauses of the original the
        candidate lost (`dropped_clauses`).
    """
    orig, cand = content_stems(original), content_stems(candidate)
    known = _known(original, instruction, keywords)
    known_q = quantities(original) | quantities(instruction)
    said = set(stem_sequence(original)) | set(stem_sequence(instruction))
    return {"kept": len(orig & cand) / len(orig) if orig else 1.0,
            "new": len(cand - known) / len(cand) if cand else 0.0,
            "new_quantities": sorted(quantities(candidate) - known_q),
            "unsupported": unsupported_clauses(candidate, known),
            "harms": invented_harms(candidate, said),
            "meta": meta_text(original, candidate, instruction),
            "lists": phrase_lists(candidate, list(keywords) or load_safety_phrases(), original),
            "foreign": foreign_letters(candidate, original + instruction),
            "dropped": dropped_clauses(original, candidate, instruction)}


def faithful(original: str, candidate: str, instruction: str = "", keywords: Sequence[str] = (),
             max_new: float | None = MAX_NEW, objective: str = "reduce", keep_clauses: bool = False) -> bool:
    """Whether a candidate is the original's answer, by the rules of the module docstring.

    Args:
        original, candidate, instruction: the texts; keywords: the seed safety phrases (their
            words are not new; under amplify, the phrases a note must carry, default the shipped set).
        max_new: the cap on the share of new content stems (reduce: of the whole candidate;
            amplify: outside the safety notes); None lifts the cap and, under reduce, the
            unsupported-clause rule too.
        objective: "reduce" or "amplify".
        keep_clauses: also reject a candidate that drops a clause of the original
            (`dropped_clauses`): the strict reading of "keep every fact".

    Always required: >= MIN_KEPT of the original's content, no meta text, no new number or unit,
    no invented harm, no list of bare phrases, no letters of another script.
    """
    if objective not in ("reduce", "amplify"):
        raise ValueError(f"objective: unknown '{objective}' (reduce, amplify)")
    f = faithfulness(original, candidate, instruction, keywords)
    if f["kept"] < MIN_KEPT or any(f[k] for k in ("new_quantities", "meta", "harms", "lists", "foreign")):
        return False
    if keep_clauses and f["dropped"]:
        return False
    if objective == "reduce":
        return max_new is None or (f["new"] <= max_new and not f["unsupported"])
    notes, facts = safety_notes(candidate, f["unsupported"], list(keywords) or load_safety_phrases())
    if facts:
        return False
    if max_new is None:
        return True
    rest = candidate
    for note in notes:
        rest = rest.replace(note, " ")
    left = content_stems(rest)
    return not left or len(left - _known(original, instruction, keywords)) / len(left) <= max_new
