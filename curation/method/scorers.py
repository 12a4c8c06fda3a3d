"""Text scorers used by the quality filter and the `amplify` objective.

Readability is Flesch reading ease (Flesch 1948) as textstat computes it (CMU
dictionary syllables, hyphenation for unknown words); stems are the Snowball
English stemmer's. Safety implication counts the seed safety phrases a text
carries, matched whole-word on stems. All are cheap and deterministic, so they
run before the judge and the model.
"""
from __future__ import annotations

import functools
import re
import threading
from typing import Sequence

from buckle.core.shipped import package_folder

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_LOCAL = threading.local()  # a Snowball stemmer object keeps state while it stems: one per thread


def words(text: str) -> list[str]:
    """Alphabetic words of a text (apostrophe contractions kept whole)."""
    return _WORD.findall(text)


def readability(text: str) -> float:
    """Flesch reading ease clipped to [0, 100], so the filter's ratio stays meaningful (0.0 for no words)."""
    import textstat

    if not words(text):
        return 0.0
    return min(100.0, max(0.0, float(textstat.flesch_reading_ease(text))))


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Snowball (English) stem of a word, lower-cased ("harmful" -> "harm", "harmony" -> "harmoni")."""
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _LOCAL.stemmer = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word.lower())


def _phrase_file_lines() -> list[str]:
    path = package_folder("buckle.curation", "data", "safety_phrases.txt")
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def load_safety_phrases() -> list[str]:
    """The seed safety phrases shipped in curation/data/safety_phrases.txt, in file order."""
    return [line for line in _phrase_file_lines() if not line.startswith("!")]


@functools.lru_cache(maxsize=1)
def false_friends() -> frozenset[str]:
    """Word forms that share a seed phrase's stem but not its sense ("respectively"), from the same file."""
    return frozenset(line[1:].strip().lower() for line in _phrase_file_lines() if line.startswith("!"))


def stem_sequence(text: str) -> list[str]:
    """Stems of a text's words in order; a false friend becomes "" so it matches no phrase."""
    friends = false_friends()
    return ["" if w.lower() in friends else stem(w) for w in words(text)]


def _contains(seq: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(seq[i:i + n]) == phrase for i in range(len(seq) - n + 1))


class SafetyScorer:
    """Safety implication: how many distinct seed safety phrases a text carries.

    A phrase matches a run of whole words with the same stems, in order
    ("harm" matches "harmful" and "harms", "seek professional help" matches
    "seeking professional help"; "harm" matches neither "harmony" nor
    "pharmacy", and "respect" does not match the false friend "respectively").
    """

    def __init__(self, keywords: Sequence[str]):
        self.keywords = [k for k in keywords if k.strip()]
        self._phrases = [tuple(stem_sequence(k)) for k in self.keywords]

    def matches(self, text: str) -> list[str]:
        """The phrases found in the text, in keyword order."""
        seq = stem_sequence(text)
        return [k for k, p in zip(self.keywords, self._phrases) if p and _contains(seq, p)]

    def score(self, text: str) -> float:
        """Number of distinct phrases found."""
        return float(len(self.matches(text)))

    def carries(self, text: str) -> bool:
        """Whether the text carries any safety implication."""
        return bool(self.matches(text))
