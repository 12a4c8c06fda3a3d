"""Run summaries: the numbers every executor reports and the table `buckle curate` prints."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable


def curated_stats(rows: Iterable[dict]) -> dict[str, Any]:
    """Texts, mean perplexity before/after, improved count and acceptance rate of curated rows
    (one pass, so it streams over any number of rows)."""
    n = improved = 0
    sums = {"ppl_before": [0.0, 0], "ppl_after": [0.0, 0]}
    for row in rows:
        n += 1
        improved += bool(row.get("improved"))
        for key, acc in sums.items():
            value = row.get(key)
            if value is not None and not math.isnan(value):
                acc[0] += value
                acc[1] += 1

    def mean(key: str) -> float:
        total, count = sums[key]
        return total / count if count else math.nan

    return {"texts": n, "improved": improved, "acceptance_rate": improved / n if n else 0.0,
            "mean_ppl_before": mean("ppl_before"), "mean_ppl_after": mean("ppl_after")}


def output_stats(output_dir: str | Path, kind: str) -> dict[str, Any]:
    """The summary numbers over every part of an output, read a few columns at a time.

    Args:
        output_dir: the run's output directory.
        kind: "curated" (curated_stats) or "scored" (mean_perplexity).
    """
    import pyarrow.parquet as pq

    from buckle.curation.io.store import part_files

    names = ["perplexity"] if kind == "scored" else ["improved", "ppl_before", "ppl_after"]
    rows = (row for part in part_files(output_dir, kind)
            for row in pq.read_table(part, columns=names).to_pylist())
    if kind == "curated":
        return curated_stats(rows)
    ppl = [r["perplexity"] for r in rows if r["perplexity"] is not None and math.isfinite(r["perplexity"])]
    return {"mean_perplexity": sum(ppl) / len(ppl) if ppl else None}


def format_summary(result: dict[str, Any]) -> str:
    """The accounting line and a small table, e.g.

    read 8 = curated 8 + quarantined 0
    texts  ppl before  ppl after  improved  acceptance
        8       9.412      8.771         6        0.75
    """
    read, cur, quar = result.get("read", 0), result.get("curated", 0), result.get("quarantined", 0)
    line = f"read {read} = curated {cur} + quarantined {quar}"
    if result.get("skipped_existing"):
        line += f"   ({result['skipped_existing']} curated by an earlier run, kept)"
    if read != cur + quar:
        line += "   (MISMATCH)"
    head = f"{'texts':>6}  {'ppl before':>10}  {'ppl after':>10}  {'improved':>8}  {'acceptance':>10}"
    body = (f"{result.get('texts', cur):>6}  {_num(result.get('mean_ppl_before')):>10}  "
            f"{_num(result.get('mean_ppl_after')):>10}  {result.get('improved', 0):>8}  "
            f"{_num(result.get('acceptance_rate'), 2):>10}")
    lines = [line, head, body]
    if result.get("generated"):
        checks = [f"{result[k]} {what}" for k, what in (("unsafe_model", "judged without safety advice"),
                                                         ("unfaithful_model", "judged unfaithful"))
                  if result.get(k)]
        lines.append(f"candidates: {result['generated']} sampled, {result.get('unique', 0)} distinct, "
                     f"{result.get('passed_filter', 0)} passed the quality filter"
                     + (f" ({', '.join(checks)})" if checks else ""))
    models = result.get("models") or {}
    if models:
        reviser, scorer = models.get("reviser"), models.get("scorer")
        lines.append(f"models: {scorer} wrote and ranked the candidates" if reviser in (None, scorer)
                     else f"models: {reviser} wrote the candidates, {scorer} ranked them by perplexity")
    return "\n".join(lines)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"
