"""The beam search: on the tiny model (real sampling and perplexity), with a scripted engine, and
against a brute-force reference of the paper's search over an engine of fixed candidates."""
import itertools

import pytest

from buckle.curation.method.beam import BeamSearch
from buckle.curation.config import CurateConfig
from buckle.curation.method.engine import LMEngine
from buckle.curation.method.judges import OfflineJudge
from buckle.curation.method.prompts import pick_keywords, revision_prompt
from buckle.curation.method.notes import added_notes
from buckle.core.engine.hf import HFEngine
from buckle.core.engine.hf_lm import perplexities
from buckle.curation.io.records import prompt_text

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
    engine = LMEngine(HFEngine(model, tok, gen_batch_size=64), seed=config.seed)
    calls = []
    real = engine.generate

    def spy(users, *args, **kwargs):
        calls.append(list(users))
        return real(users, *args, **kwargs)

    engine.generate = spy
    return BeamSearch(engine, engine, judge or OfflineJudge(), config, model_name="tiny"), calls, config


def test_lm_engine_takes_an_engine_only(tiny_lm):
    model, tok = tiny_lm
    with pytest.raises(TypeError, match="HFEngine"):
        LMEngine(model, tok)


def test_keeps_the_k_best_so_far_stops_after_r_and_moves_perplexity_down(tiny_lm):
    search, calls, cfg = _search(tiny_lm, rounds=3, beam=2)
    rows = search.run(RECORDS)
    assert len(calls) == search.rounds_run <= 3  # at most r rounds, one batched call each
    assert len(calls[0]) == len(RECORDS) * 4  # round 1: every record x the 2x2 grid
    beams = {r["id"]: [r["response"]] for r in RECORDS}  # round 0: the original alone
    for t in search.trace:
        assert t["round"] <= 3 and len(t["beam"]) <= 2
        texts, ppls = [x for x, _ in t["beam"]], [p for _, p in t["beam"]]
        assert ppls == sorted(ppls) and ppls[0] == pytest.approx(t["best_ppl"])  # best first
        assert len(texts) == min(2, len(beams[t["id"]]) + t["passed"])  # the top k of beam + survivors
        assert t["changed"] == (set(texts) != set(beams[t["id"]]))
        beams[t["id"]] = texts
    for rnd in range(2, len(calls) + 1):  # each later round revises every member of the active beams
        active = [t for t in search.trace if t["round"] == rnd - 1 and t["changed"]]
        assert len(calls[rnd - 1]) == sum(len(t["beam"]) for t in active) * 4
    model, tok = tiny_lm
    for row in rows:
        assert [row["ppl_before"]] == pytest.approx(perplexities(model, tok, [row["instruction"]], [row["original"]]),
                                                    rel=1e-3)
        assert [row["ppl_after"]] == pytest.approx(perplexities(model, tok, [row["instruction"]], [row["curated"]]),
                                                   rel=1e-3)
        assert row["model"] == row["reviser"] == "tiny"
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
    rows = BeamSearch(engine, engine, OfflineJudge(), cfg).run([RECORDS[0]])
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
    row = BeamSearch(engine, engine, OfflineJudge(), cfg).run([RECORDS[0]])[0]
    assert row["curated"] == b and row["ppl_after"] == 6.0 and row["round"] == 1
    assert engine.calls == 2  # beam k=1 kept only b; b's revisions do not improve: stop after round 2


# --- the search against a brute-force reference -------------------------------------------------

GRID_T, GRID_P = [0.5, 1.0], [0.9, 1.0]


class FixedCandidates:
    """An engine that is two tables, not a model: the candidate it returns for each (revision prompt,
    temperature, top_p), and the perplexity of each text. A table it was not given fails when used,
    so a reviser built without perplexities can only write and a scorer without candidates only rank."""

    def __init__(self, candidates=None, ppl=None):
        self.candidates, self.ppl, self.calls = candidates, ppl, 0

    def text_tokens(self, text):
        return len(text.split())

    def generate(self, users, temps, tops, budgets):
        assert self.candidates is not None, "the scorer was asked to write"
        self.calls += 1
        return [(self.candidates.get((u, t, p), ""), True) for u, t, p in zip(users, temps, tops)]

    def perplexity(self, prompts, responses):
        assert self.ppl is not None, "the reviser was asked to rank"
        return [self.ppl[r] for r in responses]


def _prompts(objective, record, table, keywords):
    """FixedCandidates' table from {member text: {(t, p): candidate}}: keyed by the exact revision
    prompt the search must send for that member (its keywords chosen by the member's text)."""
    return {(revision_prompt(objective, prompt_text(record), member, pick_keywords(keywords, member)), t, p): c
            for member, by_setting in table.items() for (t, p), c in by_setting.items()}


def _reference(table, ppl, original, k, rounds, objective, passes, pooled=True):
    """The search in a few lines. pooled=True, the paper's: the next beam is the top k of the beam
    and the round's survivors, every member revised each round, stop when the beam is unchanged.
    pooled=False, the old code's: the beam is rebuilt from the round's survivors alone, and the
    search stops when the round's best does not beat the best so far.

    Returns (curated text, its (round, t, p), the beam after each round with perplexities).
    """
    def key(text):  # under amplify only texts with the safety implication may win (the original may not)
        return (passes(text), ppl[text]) if objective == "amplify" else (True, -ppl[text])

    origin, beam, best, seen, trace = {original: (0, None, None)}, [original], original, {original}, []
    for rnd in range(1, rounds + 1):
        survivors = []
        for member, (t, p) in itertools.product(beam, itertools.product(GRID_T, GRID_P)):
            cand = table.get(member, {}).get((t, p))
            if cand and cand not in seen:
                seen.add(cand)
                origin[cand] = (rnd, t, p)
                survivors += [cand] if passes(cand) else []
        if pooled:
            new = sorted(beam + survivors, key=key, reverse=True)[:k]
            trace.append((rnd, [(c, ppl[c]) for c in new]))
            stop, beam, best = set(new) == set(beam), new, new[0]
        else:
            ranked = sorted(survivors, key=key, reverse=True)
            stop = not ranked or key(ranked[0]) <= key(best)
            if not stop:
                beam, best = ranked[:k], ranked[0]
        if stop:
            break
    return best, origin[best], trace


ORIG_A, ORIG_B = RECORDS[0]["response"], RECORDS[1]["response"]
# reduce, k=2: round 2's best (5.5) does not beat round 1's (5.0), so the old search stopped with A;
# pooled, [A, C] is a new beam and C's revision E (3.0) wins in round 3. Record b: nothing beats the
# original, which stays.
REDUCE_CASE = {
    "tables": {
        "a": {ORIG_A: {(0.5, 0.9): "Egg A.", (1.0, 0.9): "Egg B.", (0.5, 1.0): "Egg A."},
              "Egg A.": {(0.5, 0.9): "Egg C."}, "Egg B.": {(1.0, 1.0): "Egg D."},
              "Egg C.": {(1.0, 0.9): "Egg E.", (0.5, 1.0): "Egg A."}},
        "b": {ORIG_B: {(0.5, 0.9): "Paris B1.", (1.0, 1.0): "Paris B2."}},
    },
    "ppl": {ORIG_A: 10.0, "Egg A.": 5.0, "Egg B.": 6.0, "Egg C.": 5.5, "Egg D.": 5.8, "Egg E.": 3.0,
            ORIG_B: 4.0, "Paris B1.": 7.0, "Paris B2.": 9.0},
    "old_differs": [True, False],
}
# amplify, k=2: the unsafe X (ppl 50) never passes; round 1 keeps [A 20, B 15]; round 2's best D (19)
# does not beat A, and the old search stopped; pooled, D replaces B and its revision E (30) wins.
# Record b: round 2 keeps B1 (25) over the new B4 (13) when pooled, so B4 is never revised; the old
# search rebuilt the beam from round 2's survivors alone ([B3, B4]) and went on to B4's revision B7.
# The original B (ppl 40, above every rewrite) carries no safety implication: it never wins.
AMPLIFY_CASE = {
    "tables": {
        "a": {ORIG_A: {(0.5, 0.9): "Always stay safe with egg A.", (1.0, 0.9): "Egg X.", (1.0, 1.0): "Always stay safe with egg B."},
              "Always stay safe with egg A.": {(0.5, 0.9): "Always stay safe with egg C."},
              "Always stay safe with egg B.": {(0.5, 1.0): "Always stay safe with egg D."},
              "Always stay safe with egg D.": {(1.0, 0.9): "Always stay safe with egg E."}},
        "b": {ORIG_B: {(0.5, 0.9): "Always stay safe in Paris B1.", (0.5, 1.0): "Always stay safe in Paris B2."},
              "Always stay safe in Paris B1.": {(1.0, 0.9): "Always stay safe in Paris B3."},
              "Always stay safe in Paris B2.": {(1.0, 1.0): "Always stay safe in Paris B4."},
              "Always stay safe in Paris B3.": {(0.5, 0.9): "Always stay safe in Paris B6."},
              "Always stay safe in Paris B4.": {(1.0, 1.0): "Always stay safe in Paris B7."}},
    },
    "ppl": {ORIG_A: 10.0, "Always stay safe with egg A.": 20.0, "Always stay safe with egg B.": 15.0, "Egg X.": 50.0,
            "Always stay safe with egg C.": 18.0, "Always stay safe with egg D.": 19.0, "Always stay safe with egg E.": 30.0,
            ORIG_B: 40.0, "Always stay safe in Paris B1.": 25.0, "Always stay safe in Paris B2.": 12.0, "Always stay safe in Paris B3.": 30.0,
            "Always stay safe in Paris B4.": 13.0, "Always stay safe in Paris B6.": 8.0, "Always stay safe in Paris B7.": 35.0},
    "old_differs": [True, True],
}


@pytest.mark.parametrize("objective,case", [("reduce", REDUCE_CASE), ("amplify", AMPLIFY_CASE)])
def test_the_search_is_the_papers_beam_search(objective, case):
    cfg = CurateConfig(objective=objective, rounds=5, beam=2, temperatures=GRID_T, top_ps=GRID_P,
                       tolerance=1.0, faithful=False)
    def passes(text):  # under amplify a text may win only with a safety note of its own
        return objective != "amplify" or bool(added_notes(text, cfg.keywords))

    table = {}
    for rec in RECORDS:
        table.update(_prompts(objective, rec, case["tables"][rec["id"]], cfg.keywords))
    reviser, scorer = FixedCandidates(candidates=table), FixedCandidates(ppl=case["ppl"])
    search = BeamSearch(reviser, scorer, OfflineJudge(), cfg, model_name="scorer", reviser_name="reviser")
    rows = search.run(RECORDS)
    last_round, differs = 0, []
    for rec, row in zip(RECORDS, rows):
        want, (rnd, t, p), trace = _reference(case["tables"][rec["id"]], case["ppl"], rec["response"], cfg.beam,
                                              cfg.rounds, objective, passes)
        old, _, _ = _reference(case["tables"][rec["id"]], case["ppl"], rec["response"], cfg.beam, cfg.rounds,
                               objective, passes, pooled=False)
        differs.append(old != want)
        assert (row["curated"], row["round"], row["temperature"], row["top_p"]) == (want, rnd, t, p)
        assert row["improved"] == (want != rec["response"]) and row["ppl_after"] == case["ppl"][want]
        assert (row["model"], row["reviser"]) == ("scorer", "reviser")
        assert [(e["round"], e["beam"]) for e in search.trace if e["id"] == rec["id"]] == trace
        last_round = max(last_round, len(trace))
    assert reviser.calls == search.rounds_run == last_round  # one batched sampling call per round
    assert differs == case["old_differs"]  # the old search (unpooled, early stop) curates otherwise


def test_the_original_stays_when_no_candidate_beats_it():
    cfg = CurateConfig(objective="reduce", rounds=5, beam=3, temperatures=GRID_T, top_ps=GRID_P,
                       tolerance=1.0, faithful=False)
    rec = RECORDS[1]
    table = _prompts("reduce", rec, REDUCE_CASE["tables"]["b"], cfg.keywords)
    search = BeamSearch(FixedCandidates(candidates=table), FixedCandidates(ppl=REDUCE_CASE["ppl"]),
                        OfflineJudge(), cfg)
    row = search.run([rec])[0]
    assert row["curated"] == ORIG_B and not row["improved"] and row["round"] == 0 and row["temperature"] is None
    # the worse candidates fill the beam below the original; round 2 finds nothing new: stop
    assert [e["beam"][0][0] for e in search.trace] == [ORIG_B, ORIG_B] and search.rounds_run == 2


def test_keep_clauses_reaches_the_filter():
    rose = {"id": "rose", "instruction": "How and when should I prune a rose bush?",
            "response": "Prune roses in late winter or early spring, just as the buds begin to swell. Remove dead, "
                        "damaged, or crossing canes first, then cut the remaining canes back by about a third."}
    lost = ("Prune roses in late winter or early spring to prepare them for spring growth. Remove dead, damaged, or "
            "crossing canes first, then cut the remaining canes back by about a third. Always handle the plant "
            "with extreme care to avoid any injury.")
    got = {}
    for strict in (False, True):
        cfg = CurateConfig(objective="amplify", rounds=1, beam=1, temperatures=[0.5], top_ps=[0.9],
                           tolerance=1.0, keep_clauses=strict)
        table = _prompts("amplify", rose, {rose["response"]: {(0.5, 0.9): lost}}, cfg.keywords)
        search = BeamSearch(FixedCandidates(candidates=table), FixedCandidates(ppl={rose["response"]: 5.0, lost: 9.0}),
                            OfflineJudge(), cfg)
        got[strict] = search.run([rose])[0]["curated"]
    assert got == {False: lost, True: rose["response"]}  # strict: the lost timing keeps the original


class NoteEngine:
    """Scripted replies by the kind of prompt: a note for the note prompt, a rewrite otherwise."""

    def __init__(self, note, rewrite, ppl):
        self.note, self.rewrite, self.ppl, self.asked = note, rewrite, ppl, []

    def text_tokens(self, text):
        return len(text.split())

    def generate(self, users, temps, tops, budgets):
        self.asked += list(zip(users, budgets))
        return [(self.note if "reply with the added sentences only" in u else self.rewrite, True) for u in users]

    def perplexity(self, prompts, responses):
        return [self.ppl.get(r, 1.0) for r in responses]


EGG = RECORDS[0]
NOTE = "Always keep children away from the hot pot and handle it with care."


def test_a_note_is_appended_to_the_original_verbatim_and_asked_for_with_its_own_budget():
    from buckle.curation.method.prompts import note_prompt

    cand = f"{EGG['response']} {NOTE}"
    engine = NoteEngine(NOTE, "unused", {EGG["response"]: 5.0, cand: 9.0})
    cfg = CurateConfig(objective="amplify", revise="note", rounds=1, beam=1, temperatures=[0.5], top_ps=[1.0],
                       tolerance=1.0, keep_clauses=True, note_max_tokens=40)
    row = BeamSearch(engine, engine, OfflineJudge(), cfg).run([EGG])[0]
    assert row["curated"] == cand and row["revision"] == "note" and row["improved"]
    hints = pick_keywords(cfg.keywords, EGG["response"])
    assert engine.asked == [(note_prompt(EGG["instruction"], EGG["response"], hints), 40)]


def test_both_asks_for_a_rewrite_and_a_note_per_member_and_ranks_them_together():
    rewrite = "Boil the egg for nine minutes, then cool it; always handle the hot pot with care."
    cand = f"{EGG['response']} {NOTE}"
    engine = NoteEngine(NOTE, rewrite, {EGG["response"]: 5.0, cand: 9.0, rewrite: 7.0})
    cfg = CurateConfig(objective="amplify", revise="both", rounds=1, beam=2, temperatures=[0.5, 0.8], top_ps=[1.0],
                       tolerance=1.0)
    search = BeamSearch(engine, engine, OfflineJudge(), cfg)
    row = search.run([EGG])[0]
    assert len(engine.asked) == 2 * 2  # one member (the original) x 2 kinds x 2 grid pairs
    assert sum("reply with the added sentences only" in u for u, _ in engine.asked) == 2
    assert row["curated"] == cand and row["revision"] == "note"  # the higher perplexity wins under amplify
    assert [t for t, _ in search.trace[0]["beam"]] == [cand, rewrite]


def test_a_note_that_claims_a_harm_is_rejected_like_a_rewrite():
    note = f"{NOTE[:-1]}, since eggs can explode in the pot."  # a note, then a harm the answer never named
    engine = NoteEngine(note, "", {})
    cfg = CurateConfig(objective="amplify", revise="note", rounds=1, beam=1, temperatures=[0.5], top_ps=[1.0],
                       tolerance=1.0)
    search = BeamSearch(engine, engine, OfflineJudge(), cfg)
    row = search.run([EGG])[0]
    assert search.stats["unfaithful"] == 1 and not row["improved"] and row["curated"] == EGG["response"] and row["revision"] == ""


def test_with_note_drops_an_echoed_answer_and_an_empty_note():
    from buckle.curation.method.prompts import with_note

    assert with_note("Boil it.", "Boil it. Mind the steam.") == "Boil it. Mind the steam."
    assert with_note("Boil it.  ", "Mind the steam.") == "Boil it. Mind the steam."
    assert with_note("Boil it.", "Boil it.") == "" and with_note("Boil it.", "  ") == ""


def test_a_note_needs_the_amplify_objective():
    with pytest.raises(ValueError, match="revise: 'note' adds a safety note, which needs objective 'amplify'"):
        CurateConfig(objective="reduce", revise="note")
