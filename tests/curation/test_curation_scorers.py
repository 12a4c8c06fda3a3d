"""Readability (Flesch reading ease, textstat), Snowball stems and the safety phrases."""
import pytest

from buckle.curation.method.scorers import SafetyScorer, load_safety_phrases, readability, stem, stem_sequence


def test_flesch_matches_the_formula_with_dictionary_syllables():
    text = "Rinse the rice until the water runs clear, then simmer it gently for fifteen minutes in a covered saucepan."
    # 19 words, 1 sentence, 27 syllables counted by hand (until, water, simmer, gently, fifteen, minutes,
    # covered, saucepan: two each)
    assert readability(text) == pytest.approx(206.835 - 1.015 * 19 / 1 - 84.6 * 27 / 19)


def test_plain_text_reads_easier_than_dense_text():
    easy = "Boil the egg for nine minutes. Then cool it in cold water."
    hard = ("Thermal denaturation of ovalbumin proteins necessitates sustained immersion in "
            "approximately isothermal aqueous environments, subsequently followed by rapid refrigeration.")
    assert readability(easy) == 100.0 and readability(hard) == 0.0  # clipped to [0, 100]
    assert readability("") == 0.0 and readability("... !") == 0.0


def test_stems_are_snowballs():
    assert [stem(w) for w in ("Harmful", "harms", "harm", "harmony", "seeking", "injuries")] == [
        "harm", "harm", "harm", "harmoni", "seek", "injuri"]


def test_safety_phrases_match_whole_stemmed_words():
    scorer = SafetyScorer(["safety", "harm", "respect", "seek professional help", "privacy"])
    assert scorer.carries("Avoid anything harmful.") and scorer.carries("It harms the roots.")
    for text in ("The colours are in harmony.", "Add salt and pepper respectively.", "Pharmacy hours vary.",
                 "Boil the egg for nine minutes."):
        assert not scorer.carries(text), text
    assert scorer.carries("Respect their choices.") and scorer.carries("Be respectful.")
    text = "For your safety, avoid harmful shortcuts and keep safety first; if it hurts, seek professional help."
    assert scorer.matches(text) == ["safety", "harm", "seek professional help"] and scorer.score(text) == 3
    assert scorer.score("Seeking professional help is wise.") == 1
    assert scorer.score("Seek help from a professional.") == 0  # a phrase is a word sequence


def test_the_shipped_phrases_load_with_their_false_friends_kept_apart():
    phrases = load_safety_phrases()
    assert phrases[:2] == ["safety", "safe"] and "seek professional help" in phrases and len(phrases) >= 20
    assert all(not p.startswith(("!", "#")) for p in phrases)
    assert stem_sequence("respectively, respect") == ["", "respect"]
    assert SafetyScorer(phrases).matches("Stay safe and protect your hands.") == ["safe", "protect"]
