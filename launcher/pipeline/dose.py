"""A dose-response sweep (`dose: true`): ASR against the number of curated texts, curated and twin at each size."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from buckle.core.config import ConfigError
from buckle.eval.charts import dose_chart
from buckle.eval.verdicts import UNCURATED, asr_cell, p_cell


def check_dose(base: Any, got: list[tuple[str, Any]]) -> None:
    """Every variant must be the base config but for curate.limit, each limit different.

    Raises:
        ConfigError: naming the variant and the first other key it changes, or the repeated limit.
    """
    ref = _without_limit(base)
    seen: dict[Any, str] = {}
    for i, (name, v) in enumerate(got):
        diff = _first_difference(ref, _without_limit(v))
        if diff:
            raise ConfigError(f"config error: sweep[{i}] ({name}): changes {diff}; a dose sweep's variants "
                              "differ only in curate.limit")
        limit = v.curate.limit
        if limit in seen:
            raise ConfigError(f"config error: sweep[{i}] ({name}): curate.limit {limit} is also "
                              f"'{seen[limit]}'s; a dose sweep needs one variant per size")
        seen[limit] = name


def _without_limit(cfg: Any) -> dict[str, Any]:
    d = cfg.model_dump()
    for key in ("sweep", "dose", "name"):
        d.pop(key, None)
    d["curate"].pop("limit", None)
    return d


def _first_difference(a: Any, b: Any, at: str = "") -> str:
    """The dotted key where `b` first differs from `a` ('' when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(key), b.get(key), f"{at}.{key}" if at else str(key))
            if d:
                return d
        return ""
    return "" if a == b else at


def dose_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The levers rows (sweep.lever_rows) as points per defense, by the number of texts trained on."""
    points = [{"defense": r["row"]["defense"], "texts": r["records"], "improved": r["improved"],
               "attacked": r["row"]["attacked"], "curated": r["row"]["curated"],
               "uncurated": r["row"].get(UNCURATED.name) or [],
               "tests": (r["row"]["vs"].get(UNCURATED.name) or {}).get("seeds", [])} for r in rows]
    return sorted(points, key=lambda p: (p["defense"], p["texts"] or 0))


def dose_markdown(points: list[dict[str, Any]], chart: str | None = "dose.png") -> str:
    """The dose-response table (raw per-seed McNemar: a dev sweep explores) and the chart's link."""
    lines = ["## Dose response", "",
             "ASR on the dev split against the number of texts each defense trained on; the twin trains "
             "on the same texts with their originals. Raw per-seed McNemar (b = curated only, c = twin only); "
             "a dev sweep explores, so no correction.", "",
             "| defense | texts | improved | curated ASR | uncurated twin ASR | attacked ASR "
             "| McNemar curated vs uncurated |", "|---|---|---|---|---|---|---|"]
    for p in points:
        improved = "–" if p["improved"] is None else str(p["improved"])
        lines.append(f"| {p['defense']} | {p['texts']} | {improved} | {asr_cell(p['curated'])} | "
                     f"{asr_cell(p['uncurated'])} | {asr_cell([p['attacked']])} | {p_cell(p['tests'])} |")
    if chart:
        lines += ["", f"![ASR against the number of curated texts]({chart})"]
    return "\n".join(lines) + "\n"


def write_dose(points: list[dict[str, Any]], root: Path) -> Path:
    """dose.png under `root` (eval.charts.dose_chart)."""
    return dose_chart(points, root / "dose.png")
