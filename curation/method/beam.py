"""The curation method: sample revisions, filter by quality, beam-search by perplexity.

Two models take part (they may be one): the reviser writes the candidates, the
scorer, the model being defended, ranks them by the perplexity it gives them
(arXiv 2410.02220: novelty "from the perspective of LLMs").

The search is the paper's: the beam holds the k best texts so far, the original
among them from round 0; each round revises every member over the
temperature x top-p grid, and the next beam is the top k of the beam pooled with
the round's survivors. It stops after r rounds, or when a round leaves the beam
unchanged (no survivor entered it), so a record without a better candidate keeps
its original.

Under amplify the reviser may write the whole answer anew (`revise: rewrite`, the
paper's form) or only the safety note (`note`): the candidate is then the
original answer, verbatim, with the note after it; `both` asks for each.

Records of a batch move through the rounds together, so each round costs one
batched sampling pass (every record x beam member x grid pair) and one batched
perplexity pass over the candidates that survive the cheap filters.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from buckle.curation.config import CurateConfig
from buckle.curation.method.judges import HelpfulnessJudge
from buckle.curation.method.prompts import (clean_candidate, note_prompt, pick_keywords, revision_prompt,
                                            with_note)
from buckle.curation.io.records import prompt_text
from buckle.curation.method.faithfulness import MAX_NEW, faithful
from buckle.curation.method.notes import added_notes
from buckle.curation.method.scorers import SafetyScorer, readability

CHECK_P = 0.5  # a model check passes at P(yes) >= this
FINALISTS = 2  # the model faithfulness check asks about this many x beam of a round's survivors per record


@dataclass
class Candidate:
    """A response text with its scores and the setting that produced it (round 0: the original).

    `safety` is the configured check's score: seed phrases carried (keywords) or P(yes) (model).
    """

    text: str
    ppl: float = float("nan")
    readability: float = 0.0
    helpfulness: float = 0.0
    safety: float = 0.0
    round: int = 0
    temperature: float | None = None
    top_p: float | None = None
    revision: str = ""  # how the reviser made it: "rewrite" or "note" (the original: "")


@dataclass
class _State:
    record: dict
    prompt: str
    original: Candidate
    best: Candidate  # beam[0]
    beam: list[Candidate]  # the k best so far, best first
    seen: set[str] = field(default_factory=set)
    active: bool = True


def objective_key(objective: str, cand: Candidate, safety_weight: float = 0.0) -> float:
    """Larger is better: -ppl for `reduce`; log(ppl) + safety_weight x safety for `amplify`
    (with weight 0, the order of ppl). A text without a finite perplexity ranks last."""
    if not math.isfinite(cand.ppl) or cand.ppl <= 0:
        return -math.inf
    if objective == "amplify":
        return math.log(cand.ppl) + safety_weight * cand.safety
    return -cand.ppl


def passes_filter(cand: Candidate, original: Candidate, tolerance: float) -> bool:
    """Readability and helpfulness at or above (1 - tolerance) x the original's."""
    floor = 1.0 - tolerance
    return cand.readability >= floor * original.readability and cand.helpfulness >= floor * original.helpfulness


def model_checks_class(cfg: CurateConfig) -> Any:
    """The ModelChecks class (curation.method.model_checks) when a model check is configured, else None.

    Raises:
        NotImplementedError: a model check is configured but this build has no model checks.
    """
    if not cfg.uses_check_model:
        return None
    try:
        from buckle.curation.method.model_checks import ModelChecks
    except ModuleNotFoundError as exc:
        if exc.name != "buckle.curation.method.model_checks":
            raise
        fields = [f for f, v in (("safety_check", cfg.safety_check), ("faithfulness_check", cfg.faithfulness_check))
                  if v == "model"]
        raise NotImplementedError(f"{', '.join(fields)}: 'model' needs buckle.curation.method.model_checks, "
                                  "which this build lacks; use safety_check keywords / faithfulness_check rules"
                                  ) from None
    return ModelChecks


class BeamSearch:
    """Runs the method over batches of records with a reviser, a scorer, a judge and a safety scorer.

    Args:
        reviser: the LMEngine that writes candidates (`generate`, `text_tokens`).
        scorer: the LMEngine whose perplexity ranks them (`perplexity`); may be the reviser.
        judge: the helpfulness judge.
        cfg: the run's config.
        model_name: the scorer's name, recorded in each row's `model`.
        reviser_name: the reviser's name, recorded in `reviser` (default: model_name).
        check_engine: the Engine that answers the model checks (safety_check / faithfulness_check
            "model"); ModelChecks is built on it.
        checks: a ready ModelChecks-like object (safety(prompts, responses), faithfulness(originals,
            rewrites), each a list of P(yes)), instead of check_engine.

    `stats` counts candidates through the stages; `trace` keeps one entry per
    (record, round) with what survived and what the beam kept.
    """

    def __init__(self, reviser: Any, scorer: Any, judge: HelpfulnessJudge, cfg: CurateConfig,
                 model_name: str = "", reviser_name: str | None = None, check_engine: Any = None,
                 checks: Any = None):
        self.reviser, self.scorer, self.judge, self.cfg = reviser, scorer, judge, cfg
        self.model_name = model_name
        self.reviser_name = reviser_name if reviser_name is not None else model_name
        self.safety = SafetyScorer(cfg.keywords)
        self.grid = list(itertools.product(cfg.temperatures, cfg.top_ps))
        self.kinds = ("rewrite", "note") if cfg.revise == "both" else (cfg.revise,)
        self.stats: Counter = Counter()
        self.trace: list[dict] = []
        self.rounds_run = 0  # rounds of the last `run` in which some record was still active
        self.on_round: Callable[[int, int], None] | None = None  # (round, active records), e.g. progress
        if checks is None and cfg.uses_check_model:
            cls = model_checks_class(cfg)
            if check_engine is None:
                raise ValueError("safety_check / faithfulness_check 'model' need a check engine")
            checks = cls(check_engine)
        self.checks = checks
        self.weight = cfg.safety_weight if cfg.safety_check == "model" else 0.0

    def key(self, cand: Candidate) -> float:
        """The objective's rank key of a candidate (larger is better)."""
        return objective_key(self.cfg.objective, cand, self.weight)

    def run(self, records: Sequence[dict]) -> list[dict]:
        """Curate records; one output row (OUTPUT_COLUMNS) per record, in order."""
        states = self._start(records)
        self.rounds_run = 0
        for rnd in range(1, self.cfg.rounds + 1):
            active = [s for s in states if s.active]
            if not active:
                break
            if self.on_round:
                self.on_round(rnd, len(active))
            self.rounds_run = rnd
            self._round(active, rnd)
        return [self._row(s) for s in states]

    def _start(self, records: Sequence[dict]) -> list[_State]:
        prompts = [prompt_text(r) for r in records]
        texts = [r["response"] for r in records]
        ppls = self.scorer.perplexity(prompts, texts)
        safety = self._safety(prompts, texts)
        states = []
        for rec, prompt, text, ppl, safe in zip(records, prompts, texts, ppls, safety):
            orig = Candidate(text, ppl=ppl, readability=readability(text),
                             helpfulness=self.judge.score(prompt, [text])[0], safety=safe)
            states.append(_State(rec, prompt, orig, orig, [orig], seen={text}))
        return states

    def _safety(self, prompts: Sequence[str], texts: Sequence[str]) -> list[float]:
        if self.cfg.safety_check == "model":
            return list(self.checks.safety(list(prompts), list(texts))) if texts else []
        return [self.safety.score(t) for t in texts]

    def _round(self, states: list[_State], rnd: int) -> None:
        jobs = [(s, m, t, p, kind) for s in states for m in s.beam for kind in self.kinds for t, p in self.grid]
        # one prompt per (beam member, kind), keywords keyed by the member's text, so its grid rows share
        # a prefill; a note is always for the original answer, which the candidate then keeps verbatim
        users = [self._prompt(s, m, kind) for s, m, _, _, kind in jobs]
        budget = {id(m): min(self.cfg.max_new_tokens, 2 * self.reviser.text_tokens(m.text) + 32)
                  for s in states for m in s.beam}
        outs = self.reviser.generate(users, [j[2] for j in jobs], [j[3] for j in jobs],
                                     [budget[id(j[1])] if j[4] == "rewrite" else self.cfg.note_max_tokens
                                      for j in jobs])
        self.stats["generated"] += len(jobs)
        found: dict[int, list[Candidate]] = {id(s): [] for s in states}
        for (s, _, t, p, kind), (text, finished) in zip(jobs, outs):
            text = clean_candidate(text, finished, self.cfg.unfinished)
            if kind == "note" and text:
                text = with_note(s.original.text, text)
            if not text or text in s.seen:
                continue
            s.seen.add(text)
            found[id(s)].append(Candidate(text, readability=readability(text), safety=self.safety.score(text),
                                          round=rnd, temperature=t, top_p=p, revision=kind))
        survivors = {id(s): self._filter(s, found[id(s)]) for s in states}
        if self.cfg.safety_check == "model":
            self._model_safety(states, survivors)
        scored = [(s, c) for s in states for c in survivors[id(s)]]
        ppls = self.scorer.perplexity([s.prompt for s, _ in scored], [c.text for _, c in scored])
        for (_, c), ppl in zip(scored, ppls):
            c.ppl = ppl
        for s in states:
            keep = [c for c in survivors[id(s)] if math.isfinite(c.ppl)]
            self.stats["too_long"] += len(survivors[id(s)]) - len(keep)
            survivors[id(s)] = keep
        if self.cfg.faithfulness_check == "model":
            self._model_faithfulness(states, survivors)
        for s in states:
            self.stats["passed_filter"] += len(survivors[id(s)])
            self._advance(s, survivors[id(s)], rnd, len(found[id(s)]))

    def _prompt(self, s: _State, member: Candidate, kind: str) -> str:
        hints = pick_keywords(self.cfg.keywords, member.text)
        if kind == "note":
            return note_prompt(s.prompt, s.original.text, hints)
        return revision_prompt(self.cfg.objective, s.prompt, member.text, hints)

    def _filter(self, s: _State, cands: list[Candidate]) -> list[Candidate]:
        # cheap checks first, so the judge only sees candidates that can still win
        floor = (1.0 - self.cfg.tolerance) * s.original.readability
        keyword_gate = self.cfg.objective == "amplify" and self.cfg.safety_check == "keywords"
        keep = [c for c in cands if c.readability >= floor
                and (not keyword_gate
                     or added_notes(c.text, self.safety.keywords, s.original.text, s.record["instruction"]))]
        if self.cfg.faithful:  # text statistics pass fluent nonsense; this catches much of it, offline
            before = len(keep)
            # amplify adds safety implication in the model's own words ("keep children away from
            # the hot pot"): no cap on new words or clauses there, only on lost content, invented
            # quantities and meta text
            max_new = None if self.cfg.objective == "amplify" else MAX_NEW
            keep = [c for c in keep if faithful(s.original.text, c.text, s.record["instruction"],
                                                self.cfg.keywords, max_new=max_new,
                                                objective=self.cfg.objective,
                                                keep_clauses=self.cfg.keep_clauses)]
            self.stats["unfaithful"] += before - len(keep)
        for c, h in zip(keep, self.judge.score(s.prompt, [c.text for c in keep]) if keep else []):
            c.helpfulness = h
        keep = [c for c in keep if passes_filter(c, s.original, self.cfg.tolerance)]
        self.stats["unique"] += len(cands)
        return keep

    def _model_safety(self, states: list[_State], survivors: dict[int, list[Candidate]]) -> None:
        """The check model's P(yes) for safety advice, as each survivor's safety; amplify keeps P >= 0.5."""
        pairs = [(s, c) for s in states for c in survivors[id(s)]]
        for (_, c), p in zip(pairs, self._safety([s.prompt for s, _ in pairs], [c.text for _, c in pairs])):
            c.safety = p
        if self.cfg.objective == "amplify":
            for s in states:
                keep = [c for c in survivors[id(s)] if c.safety >= CHECK_P]
                self.stats["unsafe_model"] += len(survivors[id(s)]) - len(keep)
                survivors[id(s)] = keep

    def _model_faithfulness(self, states: list[_State], survivors: dict[int, list[Candidate]]) -> None:
        """Ask the check model about each record's finalists (its top 2k survivors); keep those it
        finds faithful (P >= 0.5). Survivors outside the finalists are dropped unasked."""
        finalists = {id(s): sorted(survivors[id(s)], key=self.key, reverse=True)[:FINALISTS * self.cfg.beam]
                     for s in states}
        pairs = [(s, c) for s in states for c in finalists[id(s)]]
        probs = (self.checks.faithfulness([s.original.text for s, _ in pairs], [c.text for _, c in pairs])
                 if pairs else [])
        passed = {id(c) for (_, c), p in zip(pairs, probs) if p >= CHECK_P}
        self.stats["checked_model"] += len(pairs)
        for s in states:
            keep = [c for c in survivors[id(s)] if id(c) in passed]
            self.stats["unfaithful_model"] += len(finalists[id(s)]) - len(keep)
            self.stats["not_finalist"] += len(survivors[id(s)]) - len(finalists[id(s)])
            survivors[id(s)] = keep

    def _eligible(self, s: _State, c: Candidate) -> bool:
        """Whether a text may win under the objective. Under amplify the ranking is among texts that
        carry the safety implication: an original without it stays in the beam only to be revised
        again, below every survivor (each survivor passed the safety gate), however high its perplexity."""
        if self.cfg.objective != "amplify" or c is not s.original:
            return True
        if self.cfg.safety_check == "model":
            return c.safety >= CHECK_P
        return bool(added_notes(c.text, self.safety.keywords))

    def _advance(self, s: _State, survivors: list[Candidate], rnd: int, unique: int) -> None:
        """Next beam: the top k of the beam pooled with the survivors (ties keep the incumbents; under
        amplify an original without safety implication ranks last); the record stops when the beam is
        unchanged."""
        beam = sorted(s.beam + survivors, key=lambda c: (self._eligible(s, c), self.key(c)),
                      reverse=True)[:self.cfg.beam]
        changed = {id(c) for c in beam} != {id(c) for c in s.beam}
        improved = beam[0] is not s.best
        s.beam, s.best = beam, beam[0]
        if not changed:
            s.active = False  # no survivor entered the k best so far: stop this record
        self.trace.append({"id": s.record["id"], "round": rnd, "unique": unique, "passed": len(survivors),
                           "changed": changed, "improved": improved, "beam": [(c.text, c.ppl) for c in beam],
                           "best_ppl": s.best.ppl})

    def _row(self, s: _State) -> dict:
        o, b, rec = s.original, s.best, s.record
        return {
            "id": rec["id"], "instruction": rec["instruction"], "input": rec.get("input", ""),
            "source": rec.get("source", ""), "original": o.text, "curated": b.text, "improved": b is not o,
            "ppl_before": o.ppl, "ppl_after": b.ppl, "readability_before": o.readability,
            "readability_after": b.readability, "helpfulness_before": o.helpfulness,
            "helpfulness_after": b.helpfulness, "safety_before": o.safety, "safety_after": b.safety,
            "round": b.round, "temperature": b.temperature, "top_p": b.top_p, "revision": b.revision,
            "objective": self.cfg.objective, "model": self.model_name, "reviser": self.reviser_name,
        }
