"""A dev-split sweep: pipeline variants in one directory (shared steps run once) and the levers table."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from buckle.launcher.pipeline_config import PipelineConfig, _deep_merge
from buckle.launcher.steps import StepResult


def variants(cfg: PipelineConfig) -> list[tuple[str, PipelineConfig]]:
    """Each `sweep` entry laid over the config (without its `sweep`), by name.

    Raises:
        ConfigError: a variant evaluates on anything but a dev split, or its keys are wrong.
    """
    from buckle.launcher.configs import ConfigError

    base = cfg.model_dump(exclude_unset=True)
    base.pop("sweep", None)
    out = []
    for i, entry in enumerate(cfg.sweep or []):
        entry = dict(entry)
        name = str(entry.pop("name", f"variant-{i}"))
        try:
            v = PipelineConfig.model_validate(_deep_merge(base, entry))
        except Exception as exc:  # pydantic's message names the key
            raise ConfigError(f"config error: sweep[{i}] ({name}): {exc}") from None
        from buckle.launcher.pipeline import benchmarks

        bad = [b for b in benchmarks(v) if not b.endswith("-dev")]
        if bad:
            raise ConfigError(f"config error: sweep[{i}] ({name}): evaluates on '{bad[0]}'; "
                              "a sweep tunes on a dev split only (e.g. advbench-dev)")
        out.append((name, v))
    return out


def run_sweep(cfg: PipelineConfig, root: Path, run: Callable[..., None],
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every variant under `root` and write root/levers.md; returns the table's rows."""
    from buckle.launcher.pipeline import run_pipeline

    rows = []
    for name, v in variants(cfg):
        log(f"== sweep variant: {name}")
        results = run_pipeline(v, root, run, log=log)
        rows += lever_rows(name, v, results)
    (root / "levers.md").write_text(levers_markdown(cfg, rows), encoding="utf-8")
    return rows


def lever_rows(name: str, cfg: PipelineConfig, results: dict[str, StepResult]) -> list[dict[str, Any]]:
    """One row per defense of a variant: attacked, curated, uncurated ASR and the McNemar p-value."""
    from buckle.launcher.pipeline import benchmarks, defense_groups
    from buckle.launcher.pipeline_compare import compare

    bench = benchmarks(cfg)[0]
    evals = results["report"].metrics.get("labels") or []
    dirs = {label: results[f"eval-{label}"].dir / "run" for label in evals if f"eval-{label}" in results}
    counts = results["curate"].metrics
    out = []
    for row in compare(dirs, defense_groups(cfg)):
        ppl = (results[f"eval-{row['defense']}"].metrics.get("metrics") or {}).get("benign_ppl") or {}
        out.append({"variant": name, "bench": bench, "row": row, "benign_ppl": ppl.get("value"),
                    "improved": counts.get("improved"), "records": counts.get("texts") or counts.get("read")})
    return out


def levers_markdown(cfg: PipelineConfig, rows: list[dict[str, Any]]) -> str:
    """The levers table (README's): one line per variant and defense."""
    from buckle.launcher.pipeline_compare import asr_cell, p_cell

    lines = [f"# Levers on the dev split (`buckle pipeline --config {cfg.name}`)", "",
             "| variant | defense | curated texts improved | attacked ASR | curated ASR | uncurated twin ASR "
             "| McNemar curated vs uncurated | McNemar curated vs attacked | benign ppl |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        row = r["row"]
        ppl = f"{r['benign_ppl']:.2f}" if isinstance(r["benign_ppl"], (int, float)) else "–"
        improved = f"{r['improved']} of {r['records']}" if r["improved"] is not None else "–"
        lines.append(f"| {r['variant']} | {row['defense']} | {improved} | {asr_cell([row['attacked']])} | "
                     f"{asr_cell(row['curated'])} | {asr_cell(row['uncurated'])} | {p_cell(row['vs_uncurated'])} "
                     f"| {p_cell(row['vs_attacked'])} | {ppl} |")
    return "\n".join(lines) + "\n"
