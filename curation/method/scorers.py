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
