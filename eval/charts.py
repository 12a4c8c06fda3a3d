"""Matplotlib bar charts of one metric across runs, with 95% CI error bars and n."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_PERCENT = {"asr", "harmfulness_rate", "classifier_unsafe_rate"}
_LIMITS = {"harmfulness_mean": (0, 5.4), "helpfulness_mean": (0, 5.4)}


def metric_chart(runs: list[dict[str, Any]], metric: str, title: str, path: Path) -> Path:
    """Write a PNG bar chart of `metric` per run; runs without it show as 'n/a'."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    scale = 100.0 if metric in _PERCENT else 1.0
    labels, values, lows, highs, notes = [], [], [], [], []
    for r in runs:
        m = r["summary"].get("metrics", {}).get(metric)
        labels.append(r["label"])
        value = m["value"] if m else None
        ok = value is not None and not math.isnan(value)
        v = value * scale if ok else 0.0
        lo, hi = (m["ci95"] if m else (None, None))
        lo_ok = ok and lo is not None and not math.isnan(lo)
        values.append(v)
        lows.append(max(0.0, v - lo * scale) if lo_ok else 0.0)  # rounding can cross the value
        highs.append(max(0.0, hi * scale - v) if lo_ok else 0.0)
        notes.append(f"n={m['n']}" if ok else "n/a")
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(runs) + 2), 3.6), dpi=110)
    xs = range(len(runs))
    bars = ax.bar(xs, values, color="#4c72b0", yerr=[lows, highs], capsize=6, ecolor="#333")
    for bar, v, hi, note in zip(bars, values, highs, notes):
        text = f"{v:.1f}{'%' if scale == 100 else ''}\n{note}" if note != "n/a" else "n/a"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, v + hi), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), labels, rotation=20 if len(runs) > 3 else 0, ha="right" if len(runs) > 3 else "center")
    ax.set_title(f"{title} (95% CI)")
    ax.set_ylabel("%" if scale == 100 else metric.replace("_", " "))
    top = max([v + h for v, h in zip(values, highs)] + [1e-9])
    ax.set_ylim(*(_LIMITS.get(metric) or ((0, 115) if scale == 100 else (0, top * 1.3))))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _rate_bar(rates: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(value, lower, upper) in %: one seed's Wilson interval, or several seeds' mean and range."""
    vals = [r["value"] for r in rates]
    if len(rates) == 1:
        return 100 * vals[0], 100 * rates[0]["ci95"][0], 100 * rates[0]["ci95"][1]
    return 100 * sum(vals) / len(vals), 100 * min(vals), 100 * max(vals)


def dose_chart(points: list[dict[str, Any]], path: Path) -> Path:
    """Write a PNG of ASR against the number of curated texts, one panel per defense: curated and
    uncurated twin with 95% CI bars (several seeds: mean and range), the attacked model as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    defenses = sorted({p["defense"] for p in points})
    fig, axes = plt.subplots(1, len(defenses), figsize=(4.6 * len(defenses), 3.6), dpi=110, squeeze=False)
    for ax, defense in zip(axes[0], defenses):
        mine = [p for p in points if p["defense"] == defense]
        xs = [p["texts"] for p in mine]
        v, lo, hi = _rate_bar([mine[0]["attacked"]])
        ax.axhspan(lo, hi, color="#c44e52", alpha=0.12)
        ax.axhline(v, color="#c44e52", lw=1, label=f"attacked {v:.1f}%")
        # the twin a little to the right (log x), so equal points do not hide each other
        for key, color, label, shift in (("curated", "#4c72b0", "curated", 1.0),
                                         ("uncurated", "#8c8c8c", "uncurated twin", 1.04)):
            got = [(x * shift, _rate_bar(p[key])) for x, p in zip(xs, mine) if p[key]]
            if not got:
                continue
            gx = [x for x, _ in got]
            gv = [b[0] for _, b in got]
            err = [[b[0] - b[1] for _, b in got], [b[2] - b[0] for _, b in got]]
            ax.errorbar(gx, gv, yerr=err, color=color, marker="o", capsize=4, label=label)
        n = mine[0]["attacked"]["n"]
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("curated texts trained on")
        ax.set_ylabel("ASR %")
        ax.set_ylim(0, 105)
        ax.set_title(f"{defense} (n={n} prompts, 95% CI)")
        ax.legend(fontsize=7, loc="lower left")
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
