"""The curation method: sample revisions, filter by quality, beam-search by perplexity.

Records of a batch move through the rounds together, so each round costs one
batched sampling pass (every record x beam member x grid pair) and one batched
perplexity pass over the candidates that survive the cheap filters.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from buckle.curation.config import CurateConfig
from buckle.curation.method.judges import HelpfulnessJudge
from buckle.curation.method.prompts import clean_candidate, pick_keywords, revision_prompt
from buckle.curation.io.records import prompt_text
from buckle.curation.method.faithfulness import MAX_NEW, faithful
from buckle.curation.method.scorers import SafetyScorer, readability


@dataclass
class Candidate:
    """A response text with its scores and the setting that produced it (round 0: the original)."""

    text: str
    ppl: float = float("nan")
    readability: float = 0.0
    helpfulness: float = 0.0
    safety: float = 0.0
    round: int = 0
    temperature: float | None = None
    top_p: float | None = None


@dataclass
class _State:
    record: dict
    prompt: str
    original: Candidate
    best: Candidate
    beam: list[Candidate]
    seen: set[str] = field(default_factory=set)
    active: bool = True


def objective_key(objective: str, cand: Candidate) -> float:
    """Larger is better: -ppl for `reduce`, ppl for `amplify`."""
    return cand.ppl if objective == "amplify" else -cand.ppl


def passes_filter(cand: Candidate, original: Candidate, tolerance: float) -> bool:
    """Readability and helpfulness at or above (1 - tolerance) x the original's."""
    floor = 1.0 - tolerance
    return cand.readability >= floor * original.readability and cand.helpfulness >= floor * original.helpfulness


class BeamSearch:
    """Runs the method over batches of records with one engine, judge and safety scorer.

    `stats` counts candidates through the stages; `trace` keeps one entry per
    (record, round) with what survived and what the beam kept.
    """

    def __init__(self, engine: Any, judge: HelpfulnessJudge, cfg: CurateConfig, model_name: str = ""):
        self.engine, self.judge, self.cfg, self.model_name = engine, judge, cfg, model_name
        self.safety = SafetyScorer(cfg.keywords)
        self.grid = list(itertools.product(cfg.temperatures, cfg.top_ps))
        self.stats: Counter = Counter()
        self.trace: list[dict] = []
        self.on_round: Callable[[int, int], None] | None = None  # (round, active records), e.g. progress

    def run(self, records: Sequence[dict]) -> list[dict]:
        """Curate records; one output row (OUTPUT_COLUMNS) per record, in order."""
        states = self._start(records)
        for rnd in range(1, self.cfg.rounds + 1):
            active = [s for s in states if s.active]
            if not active:
                break
            if self.on_round:
                self.on_round(rnd, len(active))
            self._round(active, rnd)
        return [self._row(s) for s in states]

    def _start(self, records: Sequence[dict]) -> list[_State]:
        prompts = [prompt_text(r) for r in records]
        ppls = self.engine.perplexity(prompts, [r["response"] for r in records])
        states = []
        for rec, prompt, ppl in zip(records, prompts, ppls):
            text = rec["response"]
            orig = Candidate(text, ppl=ppl, readability=readability(text),
                             helpfulness=self.judge.score(prompt, [text])[0], safety=self.safety.score(text))
            states.append(_State(rec, prompt, orig, orig, [orig], seen={text}))
        return states

    def _round(self, states: list[_State], rnd: int) -> None:
        jobs = [(s, m, t, p) for s in states for m in s.beam for t, p in self.grid]
        # one prompt per beam member (keywords keyed by its text), so its grid rows share a prefill
        users = [revision_prompt(self.cfg.objective, s.prompt, m.text, pick_keywords(self.cfg.keywords, m.text))
                 for s, m, _, _ in jobs]
        budget = {id(m): min(self.cfg.max_new_tokens, 2 * self.engine.text_tokens(m.text) + 32)
                  for s in states for m in s.beam}
        outs = self.engine.generate(users, [j[2] for j in jobs], [j[3] for j in jobs],
                                    [budget[id(j[1])] for j in jobs])
        self.stats["generated"] += len(jobs)
        found: dict[int, list[Candidate]] = {id(s): [] for s in states}
        for (s, _, t, p), (text, finished) in zip(jobs, outs):
            text = clean_candidate(text, finished, self.cfg.unfinished)
            if not text or text in s.seen:
                continue
            s.seen.add(text)
            found[id(s)].append(Candidate(text, readability=readability(text), safety=self.safety.score(text),
                                          round=rnd, temperature=t, top_p=p))
        survivors = {id(s): self._filter(s, found[id(s)]) for s in states}
        scored = [(s, c) for s in states for c in survivors[id(s)]]
        ppls = self.engine.perplexity([s.prompt for s, _ in scored], [c.text for _, c in scored])
        for (_, c), ppl in zip(scored, ppls):
            c.ppl = ppl
        for s in states:
            self._advance(s, survivors[id(s)], rnd, len(found[id(s)]))

    def _filter(self, s: _State, cands: list[Candidate]) -> list[Candidate]:
        # cheap checks first, so the judge only sees candidates that can still win
        floor = (1.0 - self.cfg.tolerance) * s.original.readability
        keep = [c for c in cands if c.readability >= floor
                and (self.cfg.objective != "amplify" or self.safety.carries(c.text))]
        if self.cfg.faithful:  # text statistics pass fluent nonsense; this catches much of it, offline
            before = len(keep)
            # amplify adds safety implication in the model's own words ("keep children away from
            # the hot pot"): no cap on new words or clauses there, only on lost content, invented
            # quantities and meta text
            max_new = None if self.cfg.objective == "amplify" else MAX_NEW
            keep = [c for c in keep if faithful(s.original.text, c.text, s.record["instruction"],
                                                self.cfg.keywords, max_new)]
            self.stats["unfaithful"] += before - len(keep)
        for c, h in zip(keep, self.judge.score(s.prompt, [c.text for c in keep]) if keep else []):
            c.helpfulness = h
        keep = [c for c in keep if passes_filter(c, s.original, self.cfg.tolerance)]
        self.stats["unique"] += len(cands)
        self.stats["passed_filter"] += len(keep)
        return keep

    def _advance(self, s: _State, survivors: list[Candidate], rnd: int, unique: int) -> None:
        ranked = sorted(survivors, key=lambda c: objective_key(self.cfg.objective, c), reverse=True)
        improved = bool(ranked) and objective_key(self.cfg.objective, ranked[0]) > objective_key(
            self.cfg.objective, s.best)
        if improved:
            s.best, s.beam = ranked[0], ranked[:self.cfg.beam]
        else:
            s.active = False  # no candidate beats the best so far: stop this record
        self.trace.append({"id": s.record["id"], "round": rnd, "unique": unique, "passed": len(survivors),
                           "improved": improved, "beam": [(c.text, c.ppl) for c in s.beam],
                           "best_ppl": s.best.ppl})

    def _row(self, s: _State) -> dict:
        o, b, rec = s.original, s.best, s.record
        return {
            "id": rec["id"], "instruction": rec["instruction"], "input": rec.get("input", ""),
            "source": rec.get("source", ""), "original": o.text, "curated": b.text, "improved": b is not o,
            "ppl_before": o.ppl, "ppl_after": b.ppl, "readability_before": o.readability,
            "readability_after": b.readability, "helpfulness_before": o.helpfulness,
            "helpfulness_after": b.helpfulness, "safety_before": o.safety, "safety_after": b.safety,
            "round": b.round, "temperature": b.temperature, "top_p": b.top_p,
            "objective": self.cfg.objective, "model": self.model_name,
        }
