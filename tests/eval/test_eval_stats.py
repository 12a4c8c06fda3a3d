"""Confidence intervals against hand-computed and tabulated values."""
import math

import pytest

from buckle.eval.stats import corpus_ppl_ci, mean_ci, t95, wilson


def test_wilson_known_values():
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson(19, 20) == pytest.approx((0.76394, 0.99111), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-4)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_t_quantiles_match_tables():
    for df, want in [(1, 12.706), (4, 2.776), (19, 2.093), (30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980)]:
        assert t95(df) == pytest.approx(want, abs=1.5e-3)
    assert t95(10 ** 6) == pytest.approx(1.96, abs=1e-3)


def test_mean_ci_by_hand():
    mean, (lo, hi) = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3 and lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)
    assert mean_ci([4.0]) == (4.0, (4.0, 4.0))


def test_corpus_ppl_is_token_weighted_and_interval_contains_it():
    nll, tokens = [10.0, 30.0, 5.0], [10, 10, 5]
    value, (lo, hi) = corpus_ppl_ci(nll, tokens)
    assert value == pytest.approx(math.exp(45 / 25))
    assert lo <= value <= hi
    assert corpus_ppl_ci(nll, tokens) == corpus_ppl_ci(nll, tokens)  # seeded
