"""A dev-split sweep: pipeline variants in one directory (shared steps run once), the levers table and,
for `dose: true`, the dose response (pipeline.dose)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from buckle.core.config import ConfigError
from buckle.eval.verdicts import ATTACKED, UNCURATED, Comparator, asr_cell, compare, p_cell
from buckle.launcher.pipeline.build import run_pipeline
from buckle.launcher.pipeline.config import PipelineConfig, deep_merge
from buckle.launcher.pipeline.dose import check_dose, dose_markdown, dose_points, write_dose
from buckle.launcher.pipeline.plan import Plan, benchmarks
from buckle.launcher.pipeline.sections import Results, run_dir


def variants(cfg: PipelineConfig) -> list[tuple[str, PipelineConfig]]:
    """Each `sweep` entry laid over the config (without its `sweep`), by name.

    Raises:
        ConfigError: a variant evaluates on anything but a dev split, or its keys are wrong.
    """
    base = cfg.model_dump(exclude_unset=True)
    base.pop("sweep", None)
    base.pop("dose", None)  # a variant is one pipeline, not a sweep
    out = []
    for i, entry in enumerate(cfg.sweep or []):
        entry = dict(entry)
        name = str(entry.pop("name", f"variant-{i}"))
        try:
            v = PipelineConfig.model_validate(deep_merge(base, entry))
        except Exception as exc:  # pydantic's message names the key
            raise ConfigError(f"config error: sweep[{i}] ({name}): {exc}") from None
        bad = [b for b in benchmarks(v) if not b.endswith("-dev")]
        if bad:
            raise ConfigError(f"config error: sweep[{i}] ({name}): evaluates on '{bad[0]}'; "
                              "a sweep tunes on a dev split only (e.g. advbench-dev)")
        out.append((name, v))
    if cfg.dose:
        check_dose(cfg, out)
    return out


def run_sweep(cfg: PipelineConfig, root: Path, run: Callable[..., None],
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every variant under `root` and write root/levers.md; returns the table's rows."""
    rows = []
    for name, v in variants(cfg):
        log(f"== sweep variant: {name}")
        plan, results = run_pipeline(v, root, run, log=log)
        rows += lever_rows(name, plan, results)
    if cfg.dose:
        write_dose(dose_points(rows), root)
    (root / "levers.md").write_text(levers_markdown(cfg, rows), encoding="utf-8")
    return rows


def lever_rows(name: str, plan: Plan, results: Results) -> list[dict[str, Any]]:
    """One row per defense of a variant: attacked, curated, uncurated ASR and the McNemar p-values,
    on the first benchmark, with its curate node's counts."""
    bench = plan.benchmarks[0]
    dirs = {row.label: run_dir(results, row.evals[bench]) for row in plan.rows if row.evals[bench].name in results}
    out = []
    for row in compare(dirs, plan.groups()):
        curated = plan.row(row["defense"]).evals[bench]
        ppl = (results[curated.name].metrics.get("metrics") or {}).get("benign_ppl") or {}
        counts = results[plan.defenses[row["defense"]].curate.name].metrics
        out.append({"variant": name, "bench": bench, "row": row, "benign_ppl": ppl.get("value"),
                    "improved": counts.get("improved"), "records": counts.get("texts") or counts.get("read")})
    return out


def levers_markdown(cfg: PipelineConfig, rows: list[dict[str, Any]]) -> str:
    """The levers table (README's): one line per variant and defense."""
    lines = [f"# Levers on the dev split (`buckle pipeline --config {cfg.name}`)", "",
             "| variant | defense | curated texts improved | attacked ASR | curated ASR | uncurated twin ASR "
             "| McNemar curated vs uncurated | McNemar curated vs attacked | benign ppl |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        row = r["row"]
        ppl = f"{r['benign_ppl']:.2f}" if isinstance(r["benign_ppl"], (int, float)) else "–"
        improved = f"{r['improved']} of {r['records']}" if r["improved"] is not None else "–"
        lines.append(f"| {r['variant']} | {row['defense']} | {improved} | {asr_cell([row['attacked']])} | "
                     f"{asr_cell(row['curated'])} | {asr_cell(row['uncurated'])} | {p_cell(_seeds(row, UNCURATED))} "
                     f"| {p_cell(_seeds(row, ATTACKED))} | {ppl} |")
    dose = ["", dose_markdown(dose_points(rows))] if cfg.dose else []
    return "\n".join(lines + dose) + "\n"


def _seeds(row: dict[str, Any], comp: Comparator) -> list[dict[str, Any]]:
    """The per-seed raw tests against one comparator (a dev sweep explores: no correction)."""
    t = row["vs"].get(comp.name)
    return t["seeds"] if t else []
