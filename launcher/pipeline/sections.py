"""Sections of the pipeline report, each a Markdown string built from the plan and its finished steps."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from buckle.eval.report import cell
from buckle.eval.verdicts import ALPHA, adjust, compare, markdown, verdict
from buckle.launcher.pipeline.plan import EvalNode, Plan
from buckle.launcher.pipeline.steps import StepResult

HARMFUL_JUDGES_SKIP = ("policy", "helpfulness")  # scores, not a success verdict per prompt
PAIR_CHARS = 800  # a corpus answer and its rewrite fit whole; longer texts lose their middle
Results = dict[str, StepResult]


def run_dir(results: Results, node: Any) -> Path:
    """Where a node's command wrote its outputs."""
    return results[node.name].run


def summary(results: Results, node: EvalNode) -> dict[str, Any]:
    """An eval node's summary.json."""
    return json.loads((run_dir(results, node) / "summary.json").read_text())


def _value(v: Any) -> float | None:
    if isinstance(v, dict):
        v = v.get("value")
    return v if isinstance(v, (int, float)) else None


def agreement_title(judge: str, agreement: dict[str, Any]) -> str:
    """`keyword judge: accuracy 0.81, kappa 0.62, n=395 vs human labels`, or a note it was not measured."""
    a = agreement.get(judge)
    if not isinstance(a, dict):
        return f"{judge} judge (agreement with human labels not measured)"
    acc, kappa, n = _value(a.get("accuracy")), _value(a.get("kappa")), a.get("n")
    parts = [f"accuracy {acc:.2f}" if acc is not None else "", f"kappa {kappa:.2f}" if kappa is not None else "",
             f"n={n}" if n else ""]
    return f"{judge} judge: " + ", ".join(p for p in parts if p) + " vs human labels"


def comparison_md(plan: Plan, results: Results, agreement: dict[str, Any]) -> tuple[str, list[str]]:
    """Per benchmark and per judge: attacked / curated / each comparator, raw and Holm-adjusted p, verdicts.

    Every table's tests form one family for Holm's correction, so a verdict holds over all of them.

    Returns:
        (the Markdown, the verdict lines of the first judge for the report's Verdict section).
    """
    groups = plan.groups()
    if not groups:
        return "", []
    tables = []  # (benchmark name, judge, first judge?, rows)
    for bench, node in plan.row("attacked").evals.items():
        dirs = {row.label: run_dir(results, row.evals[bench]) for row in plan.rows if row.evals[bench].name in results}
        first = summary(results, node)
        name = first.get("benchmark") or bench
        judges = [j for j in first.get("judges", ["keyword"]) if j not in HARMFUL_JUDGES_SKIP]
        tables += [(name, judge, i == 0, rows) for i, judge in enumerate(judges) if (rows := compare(dirs, groups, judge))]
    family = adjust([r for *_, rows in tables for r in rows])
    text = [f"### {name}: attack success by the {agreement_title(judge, agreement)}\n\n" + markdown(rows, name, "ASR")
            for name, judge, _, rows in tables]
    verdicts = [verdict(r, name) for name, _, first, rows in tables if first for r in rows]
    note = ("ASR cells: value [Wilson 95% CI] (n prompts). p: exact two-sided McNemar test on the prompts both "
            "models answered (with several seeds, the exact stratified McNemar pooling the seeds: strata = seeds, "
            "sum of b given the discordant counts, binomial); b = prompts where only the curated model was "
            "attacked successfully, c = only the comparator. Holm p: Holm's correction over the family of "
            f"{family} tests in these tables (every defense x comparator x benchmark x judge). A defense beats "
            f"a comparator when its ASR is lower and the Holm-adjusted p < {ALPHA}. The safety-data baseline's "
            "refusals hold no keyword-judge marker, so the keyword judge may miss its refusals: read it beside "
            "the other judges.")
    return "\n".join(text) + ("\n" + note + "\n" if text else ""), verdicts


def models_md(plan: Plan, results: Results) -> str:
    """Every evaluated model: ASR per benchmark, harmful-reference NLL, over-refusal, benign perplexity,
    helpfulness."""
    summaries = {row.label: {b: summary(results, n) for b, n in row.evals.items() if n.name in results}
                 for row in plan.rows}
    benches = plan.benchmarks
    extra = sorted({k for s in summaries.values() for b in s.values() for k in b.get("metrics", {})
                    if k.startswith("harmful_ref")})
    cols = [("over_refusal", "over-refusal, benign prompts out of corpus (keyword)", "pct"),
            ("benign_ppl", "benign reference perplexity", "num"), ("helpfulness_mean", "helpfulness (0-5)", "num")]
    cols = [(k, k.replace("_", " "), "num") for k in extra] + cols
    present = [c for c in cols if any(c[0] in s.get(benches[0], {}).get("metrics", {}) for s in summaries.values())]
    some = next(iter(summaries.values()))
    head = ["model"] + [f"ASR {some.get(b, {}).get('benchmark') or b}" for b in benches] + [c[1] for c in present]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, by in summaries.items():
        first = by.get(benches[0], {}).get("metrics", {})
        cells = [cell(by.get(b, {}).get("metrics", {}).get("asr"), "pct") for b in benches]
        cells += [cell(first.get(k), kind) for k, _, kind in present]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def agreement_md(agreement: dict[str, Any]) -> str:
    """Each judge's agreement with the human labels (accuracy, F1, kappa, n)."""
    rows = {k: v for k, v in agreement.items() if isinstance(v, dict)}
    if not rows:
        return ""
    lines = ["| judge | labelled set | accuracy | F1 | Cohen's kappa | n |", "|---|---|---|---|---|---|"]
    for judge, a in rows.items():
        f = [_value(a.get(k)) for k in ("accuracy", "f1", "kappa")]
        lines.append(f"| {judge} | pyrit {a.get('set') or 'scorer_evals'} | "
                     + " | ".join("n/a" if x is None else f"{x:.2f}" for x in f) + f" | {a.get('n', '?')} |")
    return "\n".join(lines) + "\n"


def contamination_md(plan: Plan, results: Results) -> str:
    """The contamination step's table (source x evaluation set: exact, near, dropped)."""
    path = run_dir(results, plan.contamination) / "contamination.md"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def pairs_md(plan: Plan, results: Results, k: int = 5, seed: int = 0) -> str:
    """Per curate node, k random (seeded) curated texts before and after, and which model ranked them."""
    if k <= 0:
        return ""
    return "\n".join(_pairs(plan, results, node, k, seed) for node in plan.curates if node.name in results)


def _pairs(plan: Plan, results: Results, node: Any, k: int, seed: int) -> str:
    import pyarrow.parquet as pq

    users = ", ".join(d for d, g in plan.defenses.items() if g.curate is node)
    title = f"Ranked by the {node.row} model (`{node.name}`, for {users}). "
    rows = [r for p in sorted((run_dir(results, node) / "curated").glob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    changed = sorted((r for r in rows if r.get("curated") and r.get("curated") != r.get("original")),
                     key=lambda r: str(r.get("id")))
    if not changed:
        return title + "No curated text differs from its original.\n"
    pick = random.Random(seed).sample(changed, min(k, len(changed)))
    out = [f"**{_clip(r.get('instruction', ''))}**\n\n- before: {_clip(r.get('original', ''))}\n"
           f"- after: {_clip(r.get('curated', ''))}\n" for r in pick]
    return title + f"{len(pick)} of {len(changed)} changed texts (seed {seed}).\n\n" + "\n".join(out)


def _clip(text: str) -> str:
    # the middle goes, not the end: an amplify note is usually the last sentence
    text = " ".join(str(text).split())
    half = (PAIR_CHARS - 5) // 2
    return text if len(text) <= PAIR_CHARS else f"{text[:half]} ... {text[-half:]}"
