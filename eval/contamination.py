"""Contamination of evaluation sets by training data: exact and near-duplicate overlap, and clean copies.

Every training text (the training sources, the curated texts and their
originals) is checked against every evaluation set (harmful prompts, benign
references, harmful references). Overlapping evaluation rows are dropped from
clean copies that the evaluations read, or the run stops. `buckle
contamination` runs this; the pipeline runs it after curation, before the
defenses' trainings and every evaluation.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from buckle.core import hygiene
from buckle.core.catalog.data import is_named, materialize
from buckle.core.slug import slug
from buckle.eval.prompts import load_pairs, load_prompts

# eval keys naming pair sets ({instruction, response}) rather than prompt sets
PAIR_KEYS = ("benign", "harmful_reference")


class ContaminationConfig(BaseModel):
    """What `buckle contamination` checks: training sources and curated output against evaluation sets."""

    model_config = ConfigDict(extra="forbid")

    sources: dict[str, dict[str, Any]] = Field(default_factory=dict, description="name -> a training data "
                                               "spec (source, columns, split) and the role it is read as")
    curated: list[str] = Field(default_factory=list, description="curated output folders "
                               "(part-*.parquet): their instructions, curated texts and originals")
    evals: dict[str, Literal["prompts", "pairs"]] = Field(description="evaluation set -> prompts or pairs")
    mode: Literal["drop", "error"] = Field("drop", description="overlapping evaluation rows: drop them, or "
                                           "stop with an error naming the sets")
    threshold: float = Field(0.7, gt=0.0, le=1.0, description="word Jaccard of a near-duplicate")
    prompt_column: str = "prompt"
    id_column: str = "id"
    split: str = "train"


def resolve(name: str) -> str:
    """A named data set's file, or the name as given (a path or dataset id)."""
    return str(materialize(name)) if is_named(name) else name


def curated_texts(folders: list[str]) -> list[str]:
    """Instructions, curated texts and originals of curated output folders, in file order."""
    import pyarrow.parquet as pq

    out = []
    for folder in folders:
        for part in sorted(Path(folder).glob("part-*.parquet")):
            for r in pq.read_table(part).to_pylist():
                out += [t for t in (r.get("instruction"), r.get("curated"), r.get("original")) if t]
    return out


def check(cfg: ContaminationConfig, texts: dict[str, list[str]], out: Path) -> dict[str, Any]:
    """Check training texts and the curated output against every evaluation set; write clean copies.

    Args:
        cfg: the sets, the curated folders, the mode and threshold.
        texts: training source name -> its texts (prompts and responses).
        out: where clean/*.jsonl, contamination.json and contamination.md go.
    Returns:
        {"clean": eval set -> clean file, "sizes", "dropped": eval set -> count, "table": rows};
        also written to out/contamination.json.
    Raises:
        ValueError: mode "error" and some evaluation row overlaps, or every row of a set does; names the sets.
    """
    texts = dict(texts)
    if any(Path(f).exists() for f in cfg.curated):
        texts["curated texts (curate)"] = curated_texts(cfg.curated)
    rows = {name: _eval_rows(name, kind, cfg) for name, kind in cfg.evals.items()}
    evals = {name: [{"id": r["id"], "texts": _row_texts(r, kind)} for r in rows[name]]
             for name, kind in cfg.evals.items()}
    table = hygiene.check(texts, evals, cfg.threshold)
    drops = hygiene.dropped_ids(table)
    sizes = {name: len(r) for name, r in rows.items()}
    out.mkdir(parents=True, exist_ok=True)
    data = [{"source": c.source, "eval_set": c.eval_set, "exact": c.exact, "near": c.near, "dropped": len(c.ids)}
            for c in table]
    (out / "contamination.md").write_text(hygiene.markdown(table, sizes), encoding="utf-8")
    hits = [c for c in table if c.ids]
    if hits and cfg.mode == "error":
        named = "; ".join(f"{c.source} vs {c.eval_set}: {c.exact} exact, {c.near} near" for c in hits)
        raise ValueError(f"contamination: training sources overlap evaluation sets ({named}); "
                         "fix the data or set `contamination: drop`")
    empty = [name for name, r in rows.items() if r and len(drops.get(name, ())) == len(r)]
    if empty:
        raise ValueError(f"contamination: every row of {', '.join(empty)} overlaps a training source "
                         f"(table: {out / 'contamination.md'}); train on data that leaves it out")
    clean = {}
    for name, kept_rows in rows.items():
        path = out / "clean" / f"{slug(name)}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        gone = drops.get(name, set())
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows if r["id"] not in gone),
                        encoding="utf-8")
        clean[name] = str(path)
    result = {"clean": clean, "sizes": sizes, "dropped": {n: len(drops.get(n, ())) for n in rows}, "table": data}
    (out / "contamination.json").write_text(json.dumps(result, indent=2))
    return result


def _eval_rows(name: str, kind: str, cfg: ContaminationConfig) -> list[dict]:
    if kind == "pairs":
        return load_pairs(resolve(name), cfg.split)[0]
    return load_prompts(resolve(name), cfg.prompt_column, cfg.id_column, cfg.split)[0]


def _row_texts(row: dict, kind: str) -> list[str]:
    return [row.get("instruction", ""), row.get("response", "")] if kind == "pairs" else [row["prompt"]]
