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


def test_holm_against_a_hand_computed_example():
    from buckle.eval.stats import holm

    # sorted 0.005, 0.01, 0.03, 0.04 x 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.2, math.nan, 0.01])  # nan is not a member of the family
    assert got[0] == pytest.approx(0.2) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)
    assert holm([]) == []


def test_stratified_mcnemar_by_hand_and_against_scipy():
    from buckle.eval.stats import mcnemar_exact, mcnemar_stratified

    strata = [{"b": 1, "c": 4, "n": 20}, {"b": 0, "c": 3, "n": 20}, {"b": 2, "c": 2, "n": 20}]
    got = mcnemar_stratified(strata)
    # B = 3 of D = 12 discordant: 2 x (C(12,0) + C(12,1) + C(12,2) + C(12,3)) / 2^12 = 598 / 4096
    assert (got["b"], got["c"], got["n"], got["strata"]) == (3, 9, 60, 3)
    assert got["p"] == 598 / 4096
    # one stratum is the plain exact McNemar
    one = mcnemar_exact([True, True, False, False, True], [False, False, True, False, True])
    assert mcnemar_stratified([one])["p"] == one["p"] == 1.0
    assert mcnemar_stratified([{"b": 0, "c": 0, "n": 5}])["p"] == 1.0
    scipy_stats = pytest.importorskip("scipy.stats")
    for tables in (strata, [{"b": 0, "c": 22, "n": 60}, {"b": 3, "c": 18, "n": 60}], [{"b": 7, "c": 5, "n": 9}]):
        b, c = sum(t["b"] for t in tables), sum(t["c"] for t in tables)
        assert mcnemar_stratified(tables)["p"] == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue)
