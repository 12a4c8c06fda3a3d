"""95% confidence intervals (Wilson, Student t, bootstrap), paired tests and agreement with labels."""
from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.959963984540054
# two-sided 95% Student t quantiles for df 1..30; larger df use the Cornish-Fisher expansion
_T95 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; (nan, nan) when n == 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def t95(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("t quantile needs df >= 1")
    if df <= len(_T95):
        return _T95[df - 1]
    z = Z95
    terms = ((z ** 3 + z) / 4,
             (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96,
             (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384,
             (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160)
    return z + sum(g / df ** (i + 1) for i, g in enumerate(terms))


def mean_ci(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean and its t interval; the interval is (mean, mean) for one value, nan for none."""
    n = len(values)
    if n == 0:
        return math.nan, (math.nan, math.nan)
    mean = sum(values) / n
    if n == 1:
        return mean, (mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)


def corpus_ppl_ci(nll: Sequence[float], tokens: Sequence[int], resamples: int = 2000,
                  seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Token-weighted perplexity exp(sum NLL / sum tokens) with a seeded percentile bootstrap over texts."""
    import numpy as np

    nll_a, tok_a = np.asarray(nll, dtype=float), np.asarray(tokens, dtype=float)
    if len(nll_a) == 0 or tok_a.sum() == 0:
        return math.nan, (math.nan, math.nan)
    value = math.exp(nll_a.sum() / tok_a.sum())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(nll_a), size=(resamples, len(nll_a)))
    boots = np.exp(nll_a[picks].sum(axis=1) / np.maximum(tok_a[picks].sum(axis=1), 1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return value, (float(lo), float(hi))


def rate(k: int, n: int) -> dict:
    """A rate metric: value, k, n and the Wilson interval."""
    return {"value": k / n if n else math.nan, "k": k, "n": n, "ci95": list(wilson(k, n)), "method": "wilson"}


def mean_metric(values: Sequence[float]) -> dict:
    """A mean metric: value, n and the t interval."""
    mean, ci = mean_ci(values)
    return {"value": mean, "n": len(values), "ci95": list(ci), "method": "t"}


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """Exact McNemar test of two models' per-prompt outcomes on the same prompts.

    Two-sided exact binomial test on the discordant pairs: under the null each
    discordant prompt is equally likely to favour either model.

    Args:
        a: outcomes of model A (True = attack succeeded), one per prompt.
        b: outcomes of model B on the same prompts, in the same order.

    Returns:
        {"b": A succeeded and B did not, "c": B succeeded and A did not, "n": prompts,
        "p": two-sided p-value (1.0 with no discordant pair), "method": "mcnemar-exact"}.
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} vs {len(b)}")
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return {"b": only_a, "c": only_b, "n": len(a), "p": sign_test_p(only_a, only_b), "method": "mcnemar-exact"}


def sign_test_p(b: int, c: int) -> float:
    """Two-sided exact binomial p of b successes in b + c trials at 1/2 (1.0 when b + c == 0)."""
    d, k = b + c, min(b, c)
    # P(X <= k) for X ~ Binomial(d, 1/2), doubled; exact integers until the last division
    return 1.0 if d == 0 else min(1.0, 2 * sum(math.comb(d, i) for i in range(k + 1)) / 2 ** d)


def mcnemar_stratified(tables: Sequence[dict]) -> dict:
    """Exact stratified McNemar test over seeds (strata) evaluated on the same prompts.

    Given each stratum's discordant count d_s = b_s + c_s, b_s ~ Binomial(d_s, 1/2)
    under the null, independently across strata (each seed's run is its own), so
    sum b_s ~ Binomial(sum d_s, 1/2): the exact conditional test of the common
    odds ratio being 1, whose large-sample form is Cochran-Mantel-Haenszel on the
    per-seed paired tables.

    Args:
        tables: one `mcnemar_exact` result (keys b, c, n) per stratum.

    Returns:
        {"b", "c", "n": prompt pairs over all strata, "strata", "p", "method": "mcnemar-stratified-exact"}.
    """
    b, c = sum(t["b"] for t in tables), sum(t["c"] for t in tables)
    return {"b": b, "c": c, "n": sum(t["n"] for t in tables), "strata": len(tables), "p": sign_test_p(b, c),
            "method": "mcnemar-stratified-exact"}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (nan stays nan and is not counted).

    The i-th smallest of m p-values is multiplied by m - i (i from 0), made
    monotone by a running maximum and capped at 1; rejecting where the adjusted
    p < alpha controls the family-wise error rate at alpha.
    """
    ranked = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m, out, running = len(ranked), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def paired_bootstrap_diff(a: Sequence[bool], b: Sequence[bool], resamples: int = 2000,
                          seed: int = 0) -> dict:
    """Difference of two success rates on the same prompts, rate(a) - rate(b), with a paired bootstrap CI.

    Prompts are resampled with replacement, keeping each prompt's pair together.

    Returns:
        {"value", "n", "ci95": [lo, hi], "method": "paired-bootstrap"}.
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} vs {len(b)}")
    if not a:
        return {"value": math.nan, "n": 0, "ci95": [math.nan, math.nan], "method": "paired-bootstrap"}
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"value": float(diff.mean()), "n": len(diff), "ci95": [float(lo), float(hi)],
            "method": "paired-bootstrap"}


def paired_test(a: Sequence[bool], b: Sequence[bool], seed: int = 0) -> dict:
    """McNemar's exact test and the paired bootstrap of rate(a) - rate(b), in one dict."""
    return {"mcnemar": mcnemar_exact(a, b), "diff": paired_bootstrap_diff(a, b, seed=seed)}


def binary_agreement(truth: Sequence[bool], pred: Sequence[bool]) -> dict:
    """Agreement of predicted with true binary labels (True = the positive class).

    Returns:
        n, tp, fp, fn, tn, accuracy (with its Wilson 95% interval), precision, recall, f1
        and Cohen's kappa; a ratio with a zero denominator is nan.
    """
    if len(truth) != len(pred):
        raise ValueError(f"labels and predictions differ in length: {len(truth)} vs {len(pred)}")
    n = len(truth)
    tp = sum(1 for t, p in zip(truth, pred) if t and p)
    fp = sum(1 for t, p in zip(truth, pred) if p and not t)
    fn = sum(1 for t, p in zip(truth, pred) if t and not p)
    tn = n - tp - fp - fn

    def ratio(x: float, y: float) -> float:
        return x / y if y else math.nan

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    observed = ratio(tp + tn, n)
    # chance agreement from the two marginals
    expected = ratio((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn), n * n)
    kappa = ratio(observed - expected, 1 - expected)  # nan when both sides use one class only
    return {"n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "accuracy": observed,
            "accuracy_ci95": list(wilson(tp + tn, n)), "precision": precision, "recall": recall,
            "f1": f1, "kappa": kappa}
