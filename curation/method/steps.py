"""The curation work as a callable over batches of records, independent of any executor.

Every executor (curation.executors) builds a `CurateStep` once per process or
actor (the model loads once) and calls it on batches of records. Records are
screened first (`LengthScreen`): a record too long for the model's context is
bad input and belongs in quarantine, not in a crashed batch.
"""
from __future__ import annotations

from typing import Any

from buckle.curation.config import CurateConfig
from buckle.curation.io.records import Quarantine, prompt_text


class LengthScreen:
    """Quarantines records whose revision prompt plus token budget overflows the context.

    Args:
        cfg: the run's config (objective, keywords, max_new_tokens).
        tokenizer: the target model's tokenizer.
        max_length: tokens a sequence may hold (buckle.core.engine.hf_lm.context_length).
    """

    def __init__(self, cfg: CurateConfig, tokenizer: Any, max_length: int):
        from buckle.core.engine.hf_lm import prompt_ids
        from buckle.curation.method.prompts import revision_prompt

        self.cfg, self.tok, self.max_length = cfg, tokenizer, max_length
        self._revision, self._prompt_ids = revision_prompt, prompt_ids

    def tokens_needed(self, record: dict) -> int:
        """Tokens of the first revision prompt plus the smallest useful generation budget."""
        user = self._revision(self.cfg.objective, prompt_text(record), record["response"], self.cfg.keywords)
        return len(self._prompt_ids(self.tok, user)) + min(self.cfg.max_new_tokens, 16)

    def __call__(self, record: dict, where: str) -> dict | Quarantine:
        """The record unchanged, or a Quarantine saying it is too long."""
        need = self.tokens_needed(record)
        if need > self.max_length:
            return Quarantine(where, f"text too long: needs {need} tokens, the model's limit is {self.max_length}",
                              record)
        return record


class CurateStep:
    """Loads the model once; each call curates a batch of screened records."""

    def __init__(self, cfg: CurateConfig, model_path: str):
        """Args:
            cfg: the run's config.
            model_path: a local directory or hub id (already resolved by the launcher).
        """
        from buckle.curation.method.beam import BeamSearch
        from buckle.core.engine.select import config_kwargs, load_engine
        from buckle.curation.method.engine import LMEngine
        from buckle.curation.method.judges import make_judge

        self.cfg = cfg
        self.backend = load_engine(model_path, dtype=cfg.dtype, device=cfg.device, max_length=cfg.max_length,
                                   gen_batch_size=cfg.gen_batch_size, score_batch_size=cfg.score_batch_size,
                                   seed=cfg.seed, **config_kwargs(cfg))
        self.tok = self.backend.tok
        self.engine = LMEngine(self.backend, seed=cfg.seed)
        judge = make_judge(cfg.judge, cfg.judge_url, cfg.judge_model, cfg.judge_api_key_env,
                           **({"timeout": cfg.judge_timeout, "retries": cfg.judge_retries,
                               "workers": cfg.judge_workers} if cfg.judge == "openai" else {}))
        self.search = BeamSearch(self.engine, judge, cfg, model_name=cfg.model)
        self.screen = LengthScreen(cfg, self.tok, self.engine.max_length)

    @property
    def stats(self) -> dict:
        """Candidate counts so far: generated, unique, passed_filter."""
        return dict(self.search.stats)

    def __call__(self, records: list[dict]) -> list[dict]:
        """One output row (OUTPUT_COLUMNS) per record, in order.

        Raises:
            ValueError: a record is too long for the model (screen it first).
        """
        for rec in records:
            need = self.screen.tokens_needed(rec)
            if need > self.engine.max_length:
                raise ValueError(f"record '{rec['id']}' needs {need} tokens, over the limit "
                                 f"{self.engine.max_length}; screen records with LengthScreen first")
        return self.search.run(records) if records else []
