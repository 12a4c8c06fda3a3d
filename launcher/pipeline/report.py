"""The pipeline's final report: every model side by side, with what each step cost.

Built from the plan and the steps' JSON outputs (the report step's
report.json, each eval's summary.json), never from another report's Markdown.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from buckle.eval.report import markdown_table
from buckle.launcher.pipeline.plan import Plan
from buckle.launcher.pipeline.sections import (Results, agreement_md, comparison_md, contamination_md, models_md,
                                               pairs_md, run_dir)


def cost_rows(plan: Plan, results: Results) -> list[dict[str, Any]]:
    """Per report row: wall time and tokens of the steps that made the model, and of its evaluations."""
    rows = []
    for row in plan.rows:
        steps = [n.name for n in row.costs if n.name in results]
        rows.append({"label": row.label, "steps": steps,
                     "wall_s": round(sum(results[s].wall_s for s in steps), 1),
                     "tokens": sum(int(results[s].metrics.get("tokens") or 0) for s in steps),
                     "eval_wall_s": sum(results[e.name].wall_s for e in row.evals.values() if e.name in results)})
    return rows


def _cost_md(plan: Plan, results: Results) -> str:
    lines = ["| run | steps | wall time (s) | tokens trained | eval time (s) |", "|---|---|---|---|---|"]
    lines += [f"| {c['label']} | {', '.join(c['steps']) or '-'} | {c['wall_s']:.0f} | {c['tokens']:,} | "
              f"{c['eval_wall_s']:.0f} |" for c in cost_rows(plan, results)]
    return "\n".join(lines) + "\n"


def _eval_runs(folder: Path) -> list[dict[str, Any]]:
    """The report step's runs (report.json), each with its summary.json: what eval.report's table takes."""
    runs = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return [{**r, "summary": json.loads((Path(r["path"]) / "summary.json").read_text(encoding="utf-8"))}
            for r in runs]


def write_report(root: Path, plan: Plan, results: Results, pairs: int = 5) -> dict[str, str]:
    """Write root/report.md and root/report.html: controls per benchmark, every model, judges,
    contamination, cost, before/after pairs and the verdict."""
    folder = run_dir(results, plan.report)
    runs = _eval_runs(folder)
    agreement = results[plan.judges.name].metrics if plan.judges else {}
    compare_md, verdicts = comparison_md(plan, results, agreement)
    missing = judge_note(runs)
    line = attack_line(runs)
    sections = [("Curated vs uncurated vs safety-data vs attacked", compare_md),
                ("Every model", models_md(plan, results)),
                ("Safety and helpfulness (first benchmark)", markdown_table(runs) + (f"\n{missing}" if missing else "")),
                ("Judges against human labels", agreement_md(agreement)),
                ("Contamination", contamination_md(plan, results)),
                ("Cost", _cost_md(plan, results)),
                ("Curated pairs (random, seeded)", pairs_md(plan, results, pairs)),
                ("Verdict", "\n".join(f"- {v}" for v in ([line] if line else []) + verdicts) + "\n")]
    sections = [(title, text.strip()) for title, text in sections if text and text.strip()]
    body = "".join(f"## {title}\n\n{text}\n\n" for title, text in sections)
    md = root / "report.md"
    md.write_text("# buckle pipeline report\n\n" + body +
                  f"Charts and the full evaluation report: `{folder.relative_to(root)}/`.\n", encoding="utf-8")
    page = root / "report.html"
    page.write_text(_html(sections, sorted(folder.glob("*.png"))), encoding="utf-8")
    return {"markdown": str(md), "html": str(page)}


def _html(sections: list[tuple[str, str]], charts: list[Path]) -> str:
    """A standalone page: every section as preformatted text, then the charts embedded."""
    parts = "".join(f"<h2>{html.escape(title)}</h2><pre>{html.escape(text)}</pre>\n" for title, text in sections)
    imgs = "".join(f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
                   f'{base64.b64encode(p.read_bytes()).decode()}"></figure>\n' for p in charts)
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>buckle pipeline report</title>\n"
            "<style>body{font-family:sans-serif;margin:2em}img{max-width:640px}</style></head>\n"
            f"<body><h1>buckle pipeline report</h1>\n{parts}{imgs}</body></html>\n")


def judge_note(runs: list[dict]) -> str:
    """A line naming the judge-based columns that are absent and how to get them; '' when none is."""
    have = {k for r in runs for k in r.get("metrics", {})}
    absent = [name for name in ("harmfulness", "helpfulness") if f"{name}_mean" not in have]
    if not absent:
        return ""
    return (f"No {' or '.join(absent)} column: those need a judge model (set `eval.judge_backend`: openai or hf, "
            "and `eval.judge_model`). Without one, benign reference perplexity is the helpfulness measure.")


def attack_line(runs: list[dict]) -> str:
    """Did the attack work: aligned vs attacked ASR and whether their 95% intervals overlap; '' without both."""
    by = {r["label"]: r["metrics"] for r in runs}
    attacked, aligned = (by.get(label, {}).get("asr") for label in ("attacked", "aligned"))
    if not attacked or not aligned:
        return ""
    lo, hi = attacked.get("ci95", [None])[0], aligned.get("ci95", [None, None])[1]
    clear = lo is not None and hi is not None and lo > hi
    return (f"attack: ASR {aligned['value']:.1%} (aligned) -> {attacked['value']:.1%} (attacked); "
            + ("the 95% intervals do not overlap: the attack compromised the model"
               if clear else "the 95% intervals overlap: the attack is not clearly effective"))
