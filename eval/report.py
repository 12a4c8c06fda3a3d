"""Several eval runs side by side: a Markdown table, an HTML page and PNG charts (n and 95% CI)."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Sequence

from buckle.eval.summary import TITLES, fmt

COLUMNS = ("asr", "harmfulness_mean", "harmfulness_rate", "classifier_unsafe_rate",
           "helpfulness_mean", "benign_ppl")


def load_runs(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read each run's summary; a directory without one is searched one level down (a pipeline dir).

    Each row: label (manifest config label, else the summary's, else the dir name), path, summary.
    """
    rows = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run directory '{run_dir}' not found")
        found = [run_dir] if (run_dir / "summary.json").is_file() else \
            sorted(p.parent for p in run_dir.glob("*/summary.json"))
        if not found:
            raise FileNotFoundError(f"no summary.json in '{run_dir}' (or its subdirectories): not an eval run")
        rows += [_run_row(d) for d in found]
    return rows


def _run_row(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"'{path / 'summary.json'}' is not valid JSON: {exc}") from None
    label = None
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            label = (json.loads(manifest.read_text(encoding="utf-8")).get("config") or {}).get("label")
        except ValueError:
            label = None
    return {"label": label or summary.get("label") or path.name, "path": str(path), "summary": summary}


def cell(metric: dict | None, kind: str) -> str:
    """`value [lo, hi] (n=N)` or an en dash when the run lacks the metric."""
    if not metric:
        return "–"
    lo, hi = metric["ci95"]
    return f"{fmt(metric['value'], kind)} [{fmt(lo, kind)}, {fmt(hi, kind)}] (n={metric['n']})"


def _present(runs: list[dict]) -> list[str]:
    return [c for c in COLUMNS if any(c in r["summary"].get("metrics", {}) for r in runs)]


def markdown_table(runs: list[dict]) -> str:
    """One row per run; cells carry the value, its 95% CI and n."""
    cols = _present(runs)
    head = "| run | model | " + " | ".join(TITLES[c][0] for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for r in runs:
        m = r["summary"].get("metrics", {})
        cells = [cell(m.get(c), TITLES[c][1]) for c in cols]
        lines.append(f"| {r['label']} | `{_model_name(r['summary'].get('model', '?'))}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    """Write report.md, report.html (charts embedded), report.json and one PNG per metric.

    Returns:
        {"markdown": path, "html": path, "json": path, "charts": {metric: png path}, "runs": n,
        "table": the Markdown table}.
    """
    from buckle.eval.charts import metric_chart

    runs = load_runs(run_dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = {c: str(metric_chart(runs, c, TITLES[c][0], out / f"{c}.png")) for c in _present(runs)}
    table = markdown_table(runs)
    notes = ("95% CI: Wilson for rates, Student t for means, seeded bootstrap over texts for perplexity. "
             "Unparseable judge replies are excluded from n and counted apart in each run's summary.")
    md = out / "report.md"
    md.write_text(f"# buckle evaluation report\n\n{table}\n{notes}\n\n"
                  + "".join(f"![{TITLES[c][0]}]({Path(p).name})\n" for c, p in charts.items()), encoding="utf-8")
    page = out / "report.html"
    page.write_text(_html(runs, charts, notes), encoding="utf-8")
    data = out / "report.json"
    data.write_text(json.dumps([{"label": r["label"], "path": r["path"], "metrics": r["summary"].get("metrics", {})}
                                for r in runs], indent=2), encoding="utf-8")
    return {"markdown": str(md), "html": str(page), "json": str(data), "charts": charts, "runs": len(runs),
            "table": table}


def _html(runs: list[dict], charts: dict[str, str], notes: str) -> str:
    cols = _present(runs)
    head = "".join(f"<th>{html.escape(TITLES[c][0])}</th>" for c in cols)
    body = ""
    for r in runs:
        m = r["summary"].get("metrics", {})
        tds = "".join(f"<td>{html.escape(cell(m.get(c), TITLES[c][1]))}</td>" for c in cols)
        body += f"<tr><th>{html.escape(r['label'])}</th>{tds}</tr>\n"
    imgs = "".join(
        f'<figure><img alt="{html.escape(TITLES[c][0])}" src="data:image/png;base64,'
        f'{base64.b64encode(Path(p).read_bytes()).decode()}"></figure>\n' for c, p in charts.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>buckle evaluation report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:4px 8px;text-align:left}}img{{max-width:640px}}</style></head>
<body><h1>buckle evaluation report</h1>
<table><tr><th>run</th>{head}</tr>
{body}</table><p>{html.escape(notes)}</p>
{imgs}</body></html>
"""


def _model_name(model: str) -> str:
    """Short name of a model: a buckle run's `.../NAME/run/model` shows as NAME."""
    path = Path(str(model))
    while path.name in ("model", "run") and path.parent.name:
        path = path.parent
    return path.name
