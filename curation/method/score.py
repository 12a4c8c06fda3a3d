"""`buckle score`: response perplexity only (no rewriting), to pick which texts to curate.

ScoreStep is a curation step like CurateStep: built once per worker with the
config and model path, called on lists of records, one output row per record.
`run_score` is the local executor; `curation.executors.ray_executor.run_score` runs the
same step on a Ray cluster.
"""
from __future__ import annotations

from typing import Any

from buckle.curation.config import CurateConfig
from buckle.curation.io.records import SCORE_COLUMNS, prompt_text


class ScoreStep:
    """Perplexity of each record's response given its chat-formatted instruction.

    Args:
        cfg: run config (batch_size, max_length, dtype, device are used).
        model_path: local directory or hub id of the target model.
    """

    columns = SCORE_COLUMNS

    def __init__(self, cfg: CurateConfig, model_path: str):
        from buckle.curation.method.lm import load_lm

        self.cfg = cfg
        self.model, self.tok = load_lm(model_path, dtype=cfg.dtype, device=cfg.device)
        self.max_length = cfg.max_length or _context_length(self.model, self.tok)

    def __call__(self, records: list[dict]) -> list[dict]:
        """Score a batch; raises if any record cannot be scored (e.g. too long)."""
        from buckle.curation.method.lm import perplexities

        if not records:
            return []
        prompts = [prompt_text(r) for r in records]
        responses = [r["response"] for r in records]
        ppl = perplexities(self.model, self.tok, prompts, responses,
                           batch_size=self.cfg.batch_size, max_length=self.max_length)
        counts = self.tok(responses, add_special_tokens=False)["input_ids"]
        eos = 1 if self.tok.eos_token_id is not None else 0
        return [{"id": r["id"], "instruction": r["instruction"], "input": r.get("input", ""),
                 "response": r["response"], "source": r.get("source", ""),
                 "perplexity": p, "tokens": len(ids) + eos}
                for r, p, ids in zip(records, ppl, counts)]


def _context_length(model: Any, tok: Any) -> int:
    """The model's context: its position limit, else the tokenizer's (when sane)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    tok_limit = getattr(tok, "model_max_length", None)
    if not limit and tok_limit and tok_limit < 1_000_000:
        limit = tok_limit
    return int(limit or 2048)


def run_score(cfg: CurateConfig, input_source: str, output_dir: str,
              model_path: str) -> dict:
    """Score every input record in this process (the local executor).

    Same shards, output layout and resume as the Ray executor: OUTPUT/scored/
    part-*.parquet (SCORE_COLUMNS) and OUTPUT/quarantine.jsonl.

    Args:
        cfg: run config.
        input_source: JSONL/Parquet file, directory of those, or a `datasets` id.
        output_dir: output directory (created; rerunning resumes).
        model_path: what `from_pretrained` loads.

    Returns:
        Counts: read, scored, quarantined, shards computed/skipped, rows/s.
    """
    from buckle.curation.executors.shard_runner import run_local

    return run_local(cfg, input_source, output_dir, kind="score",
                     make_step=lambda: ScoreStep(cfg, model_path))
