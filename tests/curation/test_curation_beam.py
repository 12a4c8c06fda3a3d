"""The beam search: on the tiny model (real sampling and perplexity) and with a scripted engine."""
import pytest

from buckle.curation.method.beam import BeamSearch
from buckle.curation.config import CurateConfig
from buckle.curation.method.engine import LMEngine
from buckle.curation.method.judges import OfflineJudge
from buckle.core.engine.hf_lm import perplexities

RECORDS = [
    {"id": "a", "instruction": "How do I boil an egg?", "input": "", "source": "",
     "response": "Put the egg in boiling water for nine minutes, then cool it."},
    {"id": "b", "instruction": "What is the capital of France?", "input": "", "source": "",
     "response": "Paris is the capital of France."},
]


class HashJudge:
    """A judge honest about being a stand-in: the original scores 3, others 0-5 by a stable hash."""

    name = "hash"

    def score(self, instruction, responses):
        originals = {r["response"] for r in RECORDS}
        return [3.0 if r in originals else float(sum(map(ord, r)) % 6) for r in responses]


def _search(tiny_lm, judge=None, **cfg):
    model, tok = tiny_lm
    base = dict(objective="reduce", rounds=2, beam=2, temperatures=[0.8, 1.2], top_ps=[0.9, 1.0],
                tolerance=1.0, faithful=False, max_new_tokens=12, unfinished="keep", seed=0)
    config = CurateConfig(**{**base, **cfg})
    engine = LMEngine(model, tok, gen_batch_size=64, seed=config.seed)
    calls = []
    real = engine.generate

    def spy(users, *args, **kwargs):
        calls.append(list(users))
        return real(users, *args, **kwargs)

    engine.generate = spy
    return BeamSearch(engine, judge or OfflineJudge(), config, model_name="tiny"), calls, config


def test_keeps_k_stops_after_r_and_moves_perplexity_down(tiny_lm):
    search, calls, cfg = _search(tiny_lm, rounds=3, beam=2)
    rows = search.run(RECORDS)
    assert len(calls) <= 3  # at most r rounds, one batched call each
    assert len(calls[0]) == len(RECORDS) * 4  # round 1: every record x the 2x2 grid
    for t in search.trace:
        assert t["round"] <= 3 and len(t["beam"]) <= 2
        if t["improved"]:
            assert len(t["beam"]) == min(2, t["passed"])  # keeps the top k of the survivors
            ppls = [p for _, p in t["beam"]]
            assert ppls == sorted(ppls) and ppls[0] == pytest.approx(t["best_ppl"])
    if len(calls) > 1:  # round 2 revises exactly the kept beam of each active record
        active = [t for t in search.trace if t["round"] == 1 and t["improved"]]
        assert len(calls[1]) == sum(len(t["beam"]) for t in active) * 4
    model, tok = tiny_lm
    for row in rows:
        assert [row["ppl_before"]] == pytest.approx(perplexities(model, tok, [row["instruction"]], [row["original"]]))
        assert [row["ppl_after"]] == pytest.approx(perplexities(model, tok, [row["instruction"]], [row["curated"]]))
        if row["improved"]:
            assert row["ppl_after"] < row["ppl_before"] and 1 <= row["round"] <= 3
            assert row["temperature"] in (0.8, 1.2) and row["top_p"] in (0.9, 1.0)
    assert any(r["improved"] for r in rows)


def test_stops_when_no_candidate_improves(tiny_lm):
    search, calls, _ = _search(tiny_lm, rounds=4, judge=HashJudge(), tolerance=0.0)
    search.judge = type("Zero", (), {"score": lambda self, q, rs: [0.0 if r not in
                                     {x["response"] for x in RECORDS} else 5.0 for r in rs]})()
    rows = search.run(RECORDS)
    assert len(calls) == 1  # nothing passed the filter in round 1: every record stopped
    for row, rec in zip(rows, RECORDS):
        assert not row["improved"] and row["curated"] == rec["response"] and row["round"] == 0
        assert row["ppl_after"] == row["ppl_before"] and row["temperature"] is None


def test_winners_respect_the_quality_filter(tiny_lm):
    search, _, _ = _search(tiny_lm, judge=HashJudge(), tolerance=0.2, rounds=2, beam=3)
    rows = search.run(RECORDS)
    assert search.stats["passed_filter"] < search.stats["unique"]  # the filter did reject some
    for row in rows:
        if row["improved"]:
            assert row["helpfulness_after"] >= 0.8 * row["helpfulness_before"]
            assert row["readability_after"] >= 0.8 * row["readability_before"]
    for t in search.trace:
        for text, _ in t["beam"]:
            assert HashJudge().score("", [text])[0] >= 0.8 * 3.0


class ScriptedEngine:
    """Replies and perplexities from tables: checks the ranking logic exactly."""

    def __init__(self, replies, ppl):
        self.replies, self.ppl, self.calls = replies, ppl, 0

    def text_tokens(self, text):
        return len(text.split())

    def generate(self, users, temps, tops, budgets):
        self.calls += 1
        out = []
        for user, t in zip(users, temps):
            member = user.rsplit("Answer: ", 1)[1]
            out.append((self.replies.get((member, t), ""), True))
        return out

    def perplexity(self, prompts, responses):
        return [self.ppl[r] for r in responses]


def test_amplify_ranks_by_higher_perplexity_among_safety_carrying_candidates():
    orig = RECORDS[0]["response"]
    safe_hi = "Boil the egg for nine minutes, and for safety keep children away from the hot pot."
    safe_lo = "Boil the egg for nine minutes; handle the pot with caution."
    unsafe_hi = "Boil the egg for nine minutes, then cool it under running water."
    replies = {(orig, 0.5): safe_lo, (orig, 1.0): unsafe_hi, (orig, 1.5): safe_hi}
    ppl = {orig: 10.0, safe_lo: 12.0, unsafe_hi: 40.0, safe_hi: 20.0}
    cfg = CurateConfig(objective="amplify", rounds=3, beam=2, temperatures=[0.5, 1.0, 1.5], top_ps=[1.0],
                       tolerance=1.0)
    engine = ScriptedEngine(replies, ppl)
    rows = BeamSearch(engine, OfflineJudge(), cfg).run([RECORDS[0]])
    row = rows[0]
    assert row["improved"] and row["curated"] == safe_hi  # not unsafe_hi, despite its higher perplexity
    assert row["ppl_after"] == 20.0 and row["safety_after"] >= 1 and row["temperature"] == 1.5
    assert engine.calls == 2  # round 2 found nothing new (no replies scripted): stop


def test_reduce_prefers_lower_perplexity():
    orig = RECORDS[0]["response"]
    a, b = "Boil it for nine minutes, then cool it.", "Cook the egg in boiling water nine minutes, then cool."
    replies = {(orig, 0.5): a, (orig, 1.0): b, (a, 0.5): "Boil nine minutes then cool it down."}
    ppl = {orig: 10.0, a: 8.0, b: 6.0, "Boil nine minutes then cool it down.": 7.0}
    cfg = CurateConfig(objective="reduce", rounds=5, beam=1, temperatures=[0.5, 1.0], top_ps=[1.0], tolerance=1.0)
    engine = ScriptedEngine(replies, ppl)
    row = BeamSearch(engine, OfflineJudge(), cfg).run([RECORDS[0]])[0]
    assert row["curated"] == b and row["ppl_after"] == 6.0 and row["round"] == 1
    assert engine.calls == 2  # beam k=1 kept only b; b's revisions do not improve: stop after round 2
