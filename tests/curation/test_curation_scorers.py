"""Readability (Flesch reading ease) and safety implication."""
import pytest

from buckle.curation.method.scorers import SafetyScorer, flesch_reading_ease, readability, sentence_count, syllables, words


@pytest.mark.parametrize("word,count", [
    ("cat", 1), ("make", 1), ("table", 2), ("jumped", 1), ("wanted", 2), ("water", 2),
    ("beautiful", 3), ("lines", 1), ("boxes", 2), ("handled", 2), ("simple", 2), ("minutes", 2),
    ("rice", 1), ("family", 3), ("education", 4), ("the", 1), ("tree", 1),
])
def test_syllables_of_common_words(word, count):
    assert syllables(word) == count


def test_flesch_matches_the_formula():
    text = "The cat sat on the mat. It was happy."
    ws = words(text)
    assert len(ws) == 9 and sentence_count(text) == 2
    syl = sum(syllables(w) for w in ws)  # every word one syllable except "happy"
    assert syl == 10
    assert flesch_reading_ease(text) == pytest.approx(206.835 - 1.015 * 9 / 2 - 84.6 * 10 / 9)


def test_plain_text_reads_easier_than_dense_text():
    easy = "Boil the egg for nine minutes. Then cool it in cold water."
    hard = ("Thermal denaturation of ovalbumin proteins necessitates sustained immersion in "
            "approximately isothermal aqueous environments, subsequently followed by rapid refrigeration.")
    assert readability(easy) > 70 > 20 > readability(hard)
    assert 0.0 <= readability(hard) and readability("") == 0.0


def test_safety_phrases_match_word_forms_and_count_distinct():
    scorer = SafetyScorer(["safety", "harm", "seek professional help", "privacy"])
    assert scorer.score("Boil the egg for nine minutes.") == 0
    assert not scorer.carries("Pharmacy hours vary.")  # 'harm' inside a word does not count
    text = "For your safety, avoid harmful shortcuts and keep safety first; if it hurts, seek professional help."
    assert scorer.score(text) == 3
    assert scorer.score("Seeking professional help is wise.") == 1
    assert scorer.score("Cook it safely; the safest pot has a lid.") == 1


def test_stems_keep_enough_of_the_word():
    from buckle.curation.method.scorers import stem

    assert [stem(w) for w in ("safety", "caution", "responsible", "harm", "privacy", "injury")] == [
        "safe", "caut", "responsibl", "harm", "privac", "injur"]
