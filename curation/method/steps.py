"""The curation work as a callable over batches of records, independent of any executor.

Every executor (curation.executors) builds a `CurateStep` once per process or
actor (each model loads once) and calls it on batches of records. Records are
screened first (`LengthScreen`): a record too long for the reviser's or the
scorer's context is bad input and belongs in quarantine, not in a crashed batch.
"""
from __future__ import annotations

from typing import Any

from buckle.curation.config import CurateConfig
from buckle.curation.io.records import Quarantine, prompt_text


class LengthScreen:
    """Quarantines records too long for either model.

    The reviser must hold the revision prompt plus a useful token budget; the
    scorer must hold the chat-formatted instruction plus the response (the
    original's perplexity ranks it against the candidates).

    Args:
        cfg: the run's config (objective, keywords, max_new_tokens).
        reviser: the reviser's LMEngine (its tokenizer's chat template and context).
        scorer: the scorer's LMEngine; default the reviser.
    """

    def __init__(self, cfg: CurateConfig, reviser: Any, scorer: Any = None):
        from buckle.curation.method.prompts import revision_prompt

        self.cfg, self.reviser, self.scorer = cfg, reviser, scorer or reviser
        self._revision = revision_prompt

    def tokens_needed(self, record: dict) -> int:
        """Reviser tokens of the first revision prompt plus the smallest useful generation budget."""
        user = self._revision(self.cfg.objective, prompt_text(record), record["response"], self.cfg.keywords)
        return self.reviser.prompt_tokens(user) + min(self.cfg.max_new_tokens, 16)

    def problem(self, record: dict) -> str | None:
        """Why the record is too long (naming the model), or None when both models hold it."""
        need = self.tokens_needed(record)
        if need > self.reviser.max_length:
            return f"text too long: needs {need} tokens, the {self._role('reviser')}'s limit is " \
                   f"{self.reviser.max_length}"
        need = self.scorer.sequence_tokens(prompt_text(record), record["response"])
        if need > self.scorer.max_length:
            return f"text too long: needs {need} tokens, the {self._role('scorer')}'s limit is " \
                   f"{self.scorer.max_length}"
        return None

    def _role(self, role: str) -> str:
        return "model" if self.scorer is self.reviser else role

    def __call__(self, record: dict, where: str) -> dict | Quarantine:
        """The record unchanged, or a Quarantine saying it is too long."""
        why = self.problem(record)
        return record if why is None else Quarantine(where, why, record)


class CurateStep:
    """Loads the models once; each call curates a batch of screened records.

    Two roles: the reviser writes the candidates, the scorer (`cfg.model`, the
    model being defended) ranks them by perplexity. With no reviser, or one at
    the scorer's path, one engine serves both (the paper's setting). The model
    checks (safety_check / faithfulness_check "model") ask `cfg.check_model`,
    default the reviser; a model at a path already loaded is not loaded again.
    """

    def __init__(self, cfg: CurateConfig, model_path: str, models: dict[str, str] | None = None):
        """Args:
            cfg: the run's config.
            model_path: the scorer's local directory or hub id (already resolved by the launcher).
            models: resolved paths of the other roles, {"reviser": ..., "check": ...}; a role
                missing here is resolved from cfg (buckle.core.catalog.models.resolve_model).
        """
        from buckle.curation.method.beam import BeamSearch, model_checks_class
        from buckle.curation.method.engine import LMEngine
        from buckle.curation.method.judges import make_judge

        model_checks_class(cfg)  # a model check this build cannot run fails before any model loads
        self.cfg = cfg
        self.paths = role_paths(cfg, model_path, models)
        loaded: dict[str, Any] = {}

        def engine(role: str) -> Any:
            path = self.paths[role]
            if path not in loaded:
                loaded[path] = self._load(path)
            return loaded[path]

        self.backend = engine("scorer")
        self.reviser_backend = engine("reviser")
        self.tok = self.backend.tok
        self.scorer = LMEngine(self.backend, seed=cfg.seed)
        self.reviser = self.scorer if self.reviser_backend is self.backend else LMEngine(self.reviser_backend,
                                                                                         seed=cfg.seed)
        self.check_backend = engine("check") if cfg.uses_check_model else None
        self.engines = len(loaded)  # distinct models loaded
        judge = make_judge(cfg.judge, cfg.judge_url, cfg.judge_model, cfg.judge_api_key_env,
                           **({"timeout": cfg.judge_timeout, "retries": cfg.judge_retries,
                               "workers": cfg.judge_workers} if cfg.judge == "openai" else {}))
        self.search = BeamSearch(self.reviser, self.scorer, judge, cfg, model_name=cfg.model,
                                 reviser_name=cfg.reviser or cfg.model, check_engine=self.check_backend)
        self.screen = LengthScreen(cfg, self.reviser, self.scorer)

    def _load(self, path: str) -> Any:
        from buckle.core.engine.select import config_kwargs, load_engine

        cfg = self.cfg
        return load_engine(path, dtype=cfg.dtype, device=cfg.device, max_length=cfg.max_length,
                           gen_batch_size=cfg.gen_batch_size, score_batch_size=cfg.score_batch_size,
                           seed=cfg.seed, **config_kwargs(cfg))

    @property
    def stats(self) -> dict:
        """Candidate counts so far: generated, unique, passed_filter."""
        return dict(self.search.stats)

    def __call__(self, records: list[dict]) -> list[dict]:
        """One output row (OUTPUT_COLUMNS) per record, in order.

        Raises:
            ValueError: a record is too long for a model (screen it first).
        """
        for rec in records:
            why = self.screen.problem(rec)
            if why is not None:
                raise ValueError(f"record '{rec['id']}': {why}; screen records with LengthScreen first")
        return self.search.run(records) if records else []


def role_paths(cfg: CurateConfig, model_path: str, models: dict[str, str] | None = None) -> dict[str, str]:
    """What each role loads: scorer (model_path), reviser (default the scorer), check (default the reviser).

    Paths given in `models` are used as they are; a role named in cfg but not in
    `models` is resolved here (resolve_model); the check role only when a model check runs.
    """
    models = dict(models or {})
    out = {"scorer": model_path}

    def resolve(name: str) -> str:
        from buckle.core.catalog.models import resolve_model

        return resolve_model(name)

    out["reviser"] = models.get("reviser") or (resolve(cfg.reviser) if cfg.reviser else model_path)
    if cfg.uses_check_model:
        out["check"] = models.get("check") or (resolve(cfg.check_model) if cfg.check_model else out["reviser"])
    return out
