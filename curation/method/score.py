"""`buckle score`: response perplexity only (no rewriting), to pick which texts to curate.

ScoreStep is a curation step like CurateStep: built once per worker with the
config and model path, called on lists of records, one output row per record.
Any executor runs it: `buckle.curation.executors.run(cfg, source, output, "score", model_path)`.
"""
from __future__ import annotations

from typing import Any

from buckle.curation.io.records import SCORE_COLUMNS, prompt_text


class ScoreStep:
    """Perplexity of each record's response given its chat-formatted instruction.

    Args:
        cfg: run config (batch_size, max_length, dtype, device are used; a ScoreConfig or
            CurateConfig).
        model_path: local directory or hub id of the target model.
    """

    columns = SCORE_COLUMNS

    def __init__(self, cfg: Any, model_path: str):
        from buckle.core.engine.select import config_kwargs, load_engine

        self.cfg = cfg
        self.engine = load_engine(model_path, dtype=cfg.dtype, device=cfg.device, max_length=cfg.max_length,
                                  score_batch_size=cfg.batch_size, **config_kwargs(cfg))
        self.tok, self.max_length = self.engine.tok, self.engine.max_length

    def __call__(self, records: list[dict]) -> list[dict]:
        """Score a batch; raises if any record cannot be scored (e.g. too long)."""
        if not records:
            return []
        prompts = [prompt_text(r) for r in records]
        responses = [r["response"] for r in records]
        ppl = self.engine.perplexity(prompts, responses)
        counts = self.tok(responses, add_special_tokens=False)["input_ids"]
        eos = 1 if self.tok.eos_token_id is not None else 0
        return [{"id": r["id"], "instruction": r["instruction"], "input": r.get("input", ""),
                 "response": r["response"], "source": r.get("source", ""),
                 "perplexity": p, "tokens": len(ids) + eos}
                for r, p, ids in zip(records, ppl, counts)]
