"""Text scorers used by the quality filter and the `amplify` objective.

Readability is Flesch reading ease (Flesch 1948) with a rule-based syllable
counter; safety implication counts the seed safety phrases a text carries.
Both are cheap and deterministic, so they run before the judge and the model.
"""
from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_VOWELS = re.compile(r"[aeiouy]+")
# endings where a vowel group is not its own syllable, or an extra one is hidden
_SILENT_E = re.compile(r"[^aeiouy]e$")
_LE_END = re.compile(r"[^aeiouy]le$")
_ED_SILENT = re.compile(r"[^dt]ed$")


def words(text: str) -> list[str]:
    """Alphabetic words of a text (apostrophe contractions kept whole)."""
    return _WORD.findall(text)


def sentence_count(text: str) -> int:
    """Sentences, counted by terminal punctuation; at least 1 for non-empty text."""
    return max(1, len(_SENTENCE_END.findall(text.strip()))) if text.strip() else 0


def syllables(word: str) -> int:
    """Syllables of an English word by vowel groups with common exceptions; at least 1."""
    w = word.lower().strip("'")
    if not w:
        return 0
    if len(w) <= 3:
        return 1
    count = len(_VOWELS.findall(w))
    if _LE_END.search(w):
        pass  # "table": the final -le is a syllable, already counted via 'e'
    elif _SILENT_E.search(w) and not w.endswith(("ee", "ye")):
        count -= 1  # "make", "home"
    if _ED_SILENT.search(w) and not _LE_END.search(w[:-1]):
        count -= 1  # "jumped", "rained" (but "wanted", "needed" keep it)
    if w.endswith("es") and len(w) > 4 and w[-3] not in "sxzhcg" and w[-3] not in "aeiouy":
        count -= 1  # "makes", "lines"
    return max(1, count)


def flesch_reading_ease(text: str) -> float:
    """206.835 - 1.015 * words/sentences - 84.6 * syllables/words (0.0 for no words)."""
    ws = words(text)
    if not ws:
        return 0.0
    syl = sum(syllables(w) for w in ws)
    return 206.835 - 1.015 * len(ws) / sentence_count(text) - 84.6 * syl / len(ws)


def readability(text: str) -> float:
    """Flesch reading ease clipped to [0, 100], so the filter's ratio stays meaningful."""
    return min(100.0, max(0.0, flesch_reading_ease(text)))


_SUFFIXES = ("ility", "ity", "ion", "ness", "ful", "ing", "ed", "ly", "ty", "es", "s", "e", "y")


def stem(word: str) -> str:
    """A crude stem: one common suffix off, never shorter than 4 letters ("safety" -> "safe")."""
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            return w[:-len(suffix)]
    return w


class SafetyScorer:
    """Safety implication: how many distinct seed safety phrases a text carries.

    A phrase matches when each of its words, stemmed, starts a word of the
    text, in order ("safety" matches "safely", "harm" matches "harmful",
    "seek professional help" matches "seeking professional help"; "harm" does
    not match "pharmacy").
    """

    def __init__(self, keywords: Sequence[str]):
        self.keywords = [k for k in keywords if k.strip()]
        self._patterns = [re.compile(r"\b" + r"\w*\W+".join(re.escape(stem(w)) for w in words(k)) + r"\w*")
                          for k in self.keywords]

    def score(self, text: str) -> float:
        """Number of distinct phrases found."""
        low = text.lower()
        return float(sum(1 for p in self._patterns if p.search(low)))

    def carries(self, text: str) -> bool:
        """Whether the text carries any safety implication."""
        return self.score(text) > 0


# --- faithfulness: a revision must stay the original's answer, in other words ---
# Thresholds tuned on the two nonsense revisions (tests/curation/test_curation_faithfulness.py)
# and on candidates the embedded model wrote for the corpus; ordinary paraphrases pass.
MIN_KEPT = 0.4  # share of the original's content words (stemmed) the candidate keeps
MAX_NEW = 0.45  # share of the candidate's content words found in neither original, instruction nor keywords
_NUMBER_WORDS = frozenset((
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion half quarter third dozen twice double triple").split())
_UNITS = frozenset((
    "second minute hour day week month year teaspoon tablespoon tbsp tsp cup pint quart gallon ounce oz pound "
    "lb gram kilogram kg mg ml liter litre milliliter degree percent inch foot feet mile meter metre "
    "centimeter cm mm yard calorie dose pill glass spoon pinch").split())
_DIGITS = re.compile(r"\d+(?:[.,]\d+)?")
STOPWORDS = frozenset((
    "a an the and or but if then than so as of at by for from in into on onto to with without about above "
    "below over under up down out off again further once here there when where why how what which who whom "
    "this that these those am is are was were be been being have has had having do does did doing will would "
    "shall should can could may might must not no nor only own same too very just also more most much many "
    "some any each every all both few other such it its itself they them their theirs you your yours he him "
    "his she her hers we us our ours i me my mine let lets get gets make makes like well way ways thing things "
    "usually often always sometimes while before after until because through during between around".split()))


def content_stems(text: str) -> set[str]:
    """Stems of the content words of a text (stopwords and words under 3 letters left out)."""
    return {stem(w) for w in words(text) if len(w) >= 3 and w.lower() not in STOPWORDS}


def quantities(text: str) -> set[str]:
    """Numbers (digits, number words) and units of measure a text mentions, normalised."""
    found = {d.replace(",", "") for d in _DIGITS.findall(text)}
    for w in words(text):
        low = w.lower()
        unit = low[:-1] if low.endswith("s") and low[:-1] in _UNITS else low
        if low in _NUMBER_WORDS or unit in _UNITS:
            found.add(unit)
    return found


def faithfulness(original: str, candidate: str, instruction: str = "",
                 keywords: Sequence[str] = ()) -> dict[str, float | list[str]]:
    """How far a candidate stays the original's answer.

    Returns:
        kept: share of the original's content stems the candidate keeps; new: share of the
        candidate's content stems in none of original, instruction and keywords; new_quantities:
        numbers or units the candidate introduces (in neither original nor instruction).
    """
    orig, cand = content_stems(original), content_stems(candidate)
    known = orig | content_stems(instruction) | {s for k in keywords for s in content_stems(k)}
    known_q = quantities(original) | quantities(instruction)
    return {"kept": len(orig & cand) / len(orig) if orig else 1.0,
            "new": len(cand - known) / len(cand) if cand else 0.0,
            "new_quantities": sorted(quantities(candidate) - known_q)}


def faithful(original: str, candidate: str, instruction: str = "", keywords: Sequence[str] = (),
             max_new: float | None = MAX_NEW) -> bool:
    """Whether a candidate keeps the original's content (>= MIN_KEPT), adds little new (<= max_new;
    None: no cap) and introduces no number or unit of its own: catches fluent nonsense the text
    statistics pass."""
    f = faithfulness(original, candidate, instruction, keywords)
    return (f["kept"] >= MIN_KEPT and (max_new is None or f["new"] <= max_new)
            and not f["new_quantities"])
