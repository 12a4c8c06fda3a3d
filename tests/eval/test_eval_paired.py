"""Paired tests on the same prompts: exact McNemar by hand (math.comb) and the paired bootstrap."""
import math

import pytest

from buckle.eval.stats import mcnemar_exact, paired_bootstrap_diff, paired_test


def _pairs(both, only_a, only_b, neither):
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return a, b


def test_mcnemar_exact_by_hand():
    a, b = _pairs(5, 8, 2, 10)
    got = mcnemar_exact(a, b)
    assert (got["b"], got["c"], got["n"]) == (8, 2, 25)
    # two-sided: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert got["p"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert got["p"] == pytest.approx(0.109375)


def test_mcnemar_edge_cases_and_scipy():
    assert mcnemar_exact(*_pairs(3, 0, 0, 3))["p"] == 1.0  # no discordant pair
    assert mcnemar_exact(*_pairs(0, 3, 3, 0))["p"] == 1.0  # balanced: capped at 1
    assert mcnemar_exact(*_pairs(0, 10, 0, 0))["p"] == pytest.approx(2 / 2 ** 10)
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([True], [True, False])
    scipy_stats = pytest.importorskip("scipy.stats")
    for only_a, only_b in [(8, 2), (30, 12), (1, 7)]:
        want = scipy_stats.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
        assert mcnemar_exact(*_pairs(4, only_a, only_b, 4))["p"] == pytest.approx(want)


def test_paired_bootstrap_difference():
    a, b = _pairs(20, 30, 5, 45)
    got = paired_bootstrap_diff(a, b, seed=3)
    assert got["value"] == pytest.approx((50 - 25) / 100) and got["n"] == 100
    lo, hi = got["ci95"]
    assert lo < 0.25 < hi and lo > 0  # 25 more successes out of 100 is clearly positive
    assert paired_bootstrap_diff(a, b, seed=3) == got  # seeded
    same = paired_bootstrap_diff(a, a)
    assert same["value"] == 0 and same["ci95"] == [0.0, 0.0]
    assert math.isnan(paired_bootstrap_diff([], [])["value"])
    both = paired_test(a, b)
    assert both["mcnemar"]["b"] == 30 and both["diff"]["value"] == pytest.approx(0.25)
