"""A run over a corpus with its run directory: resolve the models, write the manifest, run, record.

`buckle curate` and `buckle score` (and any Python caller) go through `run_recorded`,
so model resolution, the manifest's models and engine entries, and the failed/done
status are written in one place.
"""
from __future__ import annotations

from typing import Any

from buckle.core.catalog.models import resolve_model
from buckle.core.engine.select import choice_record
from buckle.core.manifest import RunDir
from buckle.curation.executors.base import run


def role_models(cfg: Any) -> dict[str, dict[str, str]]:
    """Each model role of a run: {role: {"name", "path"}}; score has the scorer only.

    The scorer (`model`) ranks by perplexity; a curation run's reviser writes the
    candidates (default: the scorer) and its check model answers the model checks.
    """
    scorer = resolve_model(cfg.model)
    roles = {"scorer": {"name": cfg.model, "path": scorer}}
    if hasattr(cfg, "reviser"):
        roles["reviser"] = {"name": cfg.reviser or cfg.model,
                            "path": resolve_model(cfg.reviser) if cfg.reviser else scorer}
        if cfg.uses_check_model:
            roles["check"] = {"name": cfg.check_model or roles["reviser"]["name"],
                              "path": resolve_model(cfg.check_model) if cfg.check_model else roles["reviser"]["path"]}
    return roles


def run_recorded(cfg: Any, kind: str, source: str, output: str, input_name: str = "", progress: bool = True,
                 note: str = "") -> dict:
    """Run `kind` ("curate" or "score") over `source` into `output` with a manifest; returns the counts.

    Raises:
        whatever the run raises, after the manifest says status "failed" with the error.
    """
    roles = role_models(cfg)
    run_dir = RunDir(output, kind, {**cfg.model_dump(), "input": input_name or source})
    run_dir.data["models"] = roles  # who wrote the candidates, who ranked them (and who judged them)
    run_dir.write()
    if note:
        print(note)
    models = {role: m["path"] for role, m in roles.items() if role != "scorer"}
    try:
        result = run(cfg, source, output, kind, roles["scorer"]["path"], progress=progress, models=models or None)
        result["engine"] = choice_record(cfg)  # which backend (engine: auto|hf|vllm|openai) and why
        result["models"] = {role: m["name"] for role, m in roles.items()}
    except BaseException as exc:
        run_dir.finish(status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run_dir.finish(counts={k: v for k, v in result.items() if k not in ("timings", "models")},
                   timings={"run_s": result["wall_s"], **result["timings"]} if kind == "score" else result["timings"])
    return result
