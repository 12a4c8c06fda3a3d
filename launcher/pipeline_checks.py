"""Pipeline steps that check rather than train: contamination of evaluation sets, judges' agreement.

The contamination step runs after curation and before any training or
evaluation: every training source of the pipeline (align, attack, user data,
the curated texts and their originals) against every evaluation set (harmful
prompts, benign references, harmful references). Overlapping evaluation rows
are dropped from clean copies that the eval steps read, or the run stops.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from buckle.launcher.pipeline_config import PipelineConfig, recipe_content
from buckle.launcher.steps import Step, StepContext

# eval keys naming pair sets ({instruction, response}) rather than prompt sets
PAIR_KEYS = ("benign", "harmful_reference")


def training_sources(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Name -> {"source", "role", columns} of every data source a training stage of this pipeline reads.

    The whole source is checked, not the recipe's `limit` sample: every seed's sample is then covered.
    """
    stages = (["align"] if cfg.align else []) + ["attack"] + list(cfg.defenses)
    out: dict[str, dict[str, Any]] = {}
    attack = (recipe_content(cfg, "attack").get("data") or {}).get("harmful")
    for stage in stages:
        for role, spec in (recipe_content(cfg, stage).get("data") or {}).items():
            if role not in ("harmful", "benign", "user") or not spec:
                continue
            if stage == "during" and role == "user":  # the step trains on the attack's data (pipeline.py)
                spec = attack
            spec = {"source": spec} if isinstance(spec, str) else dict(spec)
            spec.pop("limit", None)
            role_read = "prompts" if stage == "align" and role == "harmful" else role
            out.setdefault(f"{spec['source']} ({stage} {role})", {**spec, "role": role_read})
    return out


def eval_sets(cfg: PipelineConfig) -> dict[str, str]:
    """Evaluation set name -> kind ("prompts" or "pairs") of every set the eval steps read."""
    from buckle.launcher.pipeline import benchmarks

    sets = {b: "prompts" for b in benchmarks(cfg) if b}
    for key in PAIR_KEYS:
        name = getattr(cfg.eval, key, None)
        if isinstance(name, str) and name:
            sets[name] = "pairs"
    return sets


def contamination_step(cfg: PipelineConfig) -> Step:
    """The `contamination` step (after curate, before every training and eval step)."""
    params = {"sources": training_sources(cfg), "evals": eval_sets(cfg), "mode": cfg.contamination,
              "threshold": cfg.near_duplicate, "curate_input": cfg.curate_input,
              "prompt_column": cfg.eval.prompt_column, "id_column": cfg.eval.id_column, "split": cfg.eval.split}

    def fn(ctx: StepContext) -> dict:
        return check_pipeline(ctx.params, ctx.deps["curate"].dir / "run" / "curated", ctx.out)
    return Step("contamination", fn, params, ["curate"])


def check_pipeline(params: dict[str, Any], curated: Path | None, out: Path) -> dict[str, Any]:
    """Check every training source against every eval set; write clean copies and the table.

    Args:
        params: the contamination step's params (sources, evals, mode, threshold, eval columns).
        curated: the curate step's output (`curated/part-*.parquet`), or None.
        out: where clean/*.jsonl, contamination.json and contamination.md go.
    Returns:
        {"clean": eval set -> clean file, "sizes", "dropped": eval set -> count, "table": rows}.
    Raises:
        ValueError: mode "error" and some evaluation row overlaps; names the sets.
    """
    from buckle.core import hygiene as cont

    texts = {name: _texts(spec) for name, spec in params["sources"].items()}
    if curated is not None and curated.exists():
        texts["curated texts (curate)"] = _curated_texts(curated)
    rows = {name: _eval_rows(name, kind, params) for name, kind in params["evals"].items()}
    evals = {name: [{"id": r["id"], "texts": _row_texts(r, kind)} for r in rows[name]]
             for name, kind in params["evals"].items()}
    table = cont.check(texts, evals, params["threshold"])
    drops = cont.dropped_ids(table)
    sizes = {name: len(r) for name, r in rows.items()}
    out.mkdir(parents=True, exist_ok=True)
    data = [{"source": c.source, "eval_set": c.eval_set, "exact": c.exact, "near": c.near, "dropped": len(c.ids)}
            for c in table]
    (out / "contamination.json").write_text(json.dumps({"table": data, "sizes": sizes}, indent=2))
    (out / "contamination.md").write_text(cont.markdown(table, sizes), encoding="utf-8")
    hits = [c for c in table if c.ids]
    if hits and params["mode"] == "error":
        named = "; ".join(f"{c.source} vs {c.eval_set}: {c.exact} exact, {c.near} near" for c in hits)
        raise ValueError(f"contamination: training sources overlap evaluation sets ({named}); "
                         "fix the data or set `contamination: drop`")
    empty = [name for name, r in rows.items() if r and len(drops.get(name, ())) == len(r)]
    if empty:
        raise ValueError(f"contamination: every row of {', '.join(empty)} overlaps a training source "
                         f"(table: {out / 'contamination.md'}); train on data that leaves it out")
    clean = {}
    for name, kept_rows in rows.items():
        path = out / "clean" / f"{_slug(name)}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        gone = drops.get(name, set())
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept_rows if r["id"] not in gone),
                        encoding="utf-8")
        clean[name] = str(path)
    return {"clean": clean, "sizes": sizes, "dropped": {n: len(drops.get(n, ())) for n in rows}, "table": data}


def _resolve(name: str) -> str:
    from buckle.core.catalog.data import is_named, materialize

    return str(materialize(name)) if is_named(name) else name


def _texts(spec: dict[str, Any]) -> list[str]:
    from buckle.train.config import DataSpec
    from buckle.train.sources import read_source

    fields = {k: v for k, v in spec.items() if k != "role"}
    records, _ = read_source(DataSpec(**{**fields, "source": _resolve(spec["source"])}), spec["role"])
    return [t for r in records for t in (r["prompt"], r["response"]) if t]


def _curated_texts(curated: Path) -> list[str]:
    import pyarrow.parquet as pq

    out = []
    for part in sorted(curated.glob("part-*.parquet")):
        for r in pq.read_table(part).to_pylist():
            out += [t for t in (r.get("instruction"), r.get("curated"), r.get("original")) if t]
    return out


def _eval_rows(name: str, kind: str, params: dict[str, Any]) -> list[dict]:
    from buckle.eval.prompts import load_pairs, load_prompts

    if kind == "pairs":
        return load_pairs(_resolve(name), params["split"])[0]
    return load_prompts(_resolve(name), params["prompt_column"], params["id_column"], params["split"])[0]


def _row_texts(row: dict, kind: str) -> list[str]:
    return [row.get("instruction", ""), row.get("response", "")] if kind == "pairs" else [row["prompt"]]


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(name).name)


# judges whose verdict says per response whether the attack succeeded (the report's ASR-like columns)
AGREEMENT_JUDGES = ("keyword", "classifier", "strongreject", "yesno", "policy")
SLOW_SUBSET = 40  # judges that run a model see a balanced seeded sample of the labelled rows


def judges_step(cfg: PipelineConfig) -> Step:
    """The `judges` step: each harmful-prompt judge of the eval section against pyrit's human labels."""
    given = cfg.eval.model_dump(exclude_unset=True)
    settings = {k: v for k, v in given.items() if k.startswith(("judge", "refusal", "classifier", "yesno",
                                                                   "strongreject"))}
    judges = [j for j in cfg.eval.active_judges() if j in AGREEMENT_JUDGES]
    params = {"judges": judges, "settings": settings, "set": "objective"}

    def fn(ctx: StepContext) -> dict:
        return judge_agreement(ctx.params["judges"], ctx.params["settings"], ctx.out, ctx.params["set"])
    return Step("judges", fn, params, [])


def judge_agreement(judges: list[str], settings: dict[str, Any], out: Path, set_name: str = "objective") -> dict:
    """Each judge's agreement with pyrit's human labels on one label set, written to out/agreement.json.

    The keyword judge sees every labelled row; a judge that runs a model sees a
    balanced seeded sample (SLOW_SUBSET rows, or `yesno_subset`), which the result says.

    Returns:
        {judge name: eval.agreement.check_judge's dict (accuracy, f1, kappa, n, ...) less per-row verdicts}.
    """
    from buckle.eval.agreement import check_judge
    from buckle.eval.config import EvalConfig
    from buckle.eval.run import build_judges
    from buckle.core.catalog.assets import cache_dir, fetch
    from buckle.launcher.cmd_eval import _offline_judge_assets

    data = {**settings, "judges": judges, "model": "none", "output": str(out), "benchmark": "none"}
    _offline_judge_assets(data)
    built = build_judges(EvalConfig(**data))
    folder = fetch("pyrit-scorer-evals")
    result = {}
    for name, judge in built.items():
        slow = None if name == "keyword" else (settings.get("yesno_subset") or SLOW_SUBSET)
        r = check_judge(judge, folder, set_name, cache=cache_dir(), limit=slow, balanced=slow is not None)
        result[name] = {k: v for k, v in r.items() if k != "verdicts"} | {"dataset": f"pyrit {set_name}"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.json").write_text(json.dumps(result, indent=2, default=str))
    return result
