"""Two roles: the reviser writes the candidates, the scorer (the defended model) ranks them by perplexity.

Real tiny models stand in for both (two checkpoints that differ in weights, chat template and context);
the model checks use a stand-in that says what it is.
"""
import json
import math
import sys
import types
from pathlib import Path

import pytest
from tiny import build_tiny_model, widen_context

from buckle.core.engine.hf import HFEngine
from buckle.core.engine.hf_lm import load_lm, perplexities, prompt_ids
from buckle.curation.config import CurateConfig
from buckle.curation.io.records import prompt_text
from buckle.curation.method.beam import BeamSearch
from buckle.curation.method.engine import LMEngine
from buckle.curation.method.judges import OfflineJudge
from buckle.curation.method.prompts import pick_keywords, revision_prompt
from buckle.curation.method.steps import CurateStep, LengthScreen
from test_curation_beam import RECORDS, FixedCandidates

REVISER_MARK = "<|im_start|>system\nYou revise answers.<|im_end|>\n"
SMALL = dict(objective="reduce", rounds=1, beam=2, temperatures=[0.8, 1.2], top_ps=[1.0], tolerance=1.0,
             faithful=False, max_new_tokens=12, unfinished="keep", dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def reviser_dir(tmp_path_factory) -> Path:
    """Another tiny model: other weights, a chat template of its own (a system line first), 2048 tokens."""
    from transformers import AutoTokenizer

    base = build_tiny_model(tmp_path_factory.mktemp("reviser-base"), seed=1)
    out = widen_context(base, tmp_path_factory.mktemp("reviser"))
    tok = AutoTokenizer.from_pretrained(out)
    tok.chat_template = REVISER_MARK.replace("\n", "\\n").join(["{{ '", "' }}"]) + tok.chat_template
    tok.save_pretrained(out)
    return out.resolve()


@pytest.fixture
def loads(monkeypatch):
    """Paths load_engine was asked for (the real load runs)."""
    import buckle.core.engine.select as select

    seen, real = [], select.load_engine

    def spy(path, *args, **kwargs):
        seen.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(select, "load_engine", spy)
    return seen


def test_one_engine_serves_both_roles_unless_the_reviser_is_another_model(wide_tiny_dir, reviser_dir, loads):
    scorer = str(Path(wide_tiny_dir).resolve())
    step = CurateStep(CurateConfig(**SMALL), scorer)  # no reviser: the paper's setting
    assert loads == [scorer] and step.reviser is step.scorer and step.engines == 1
    loads.clear()
    step = CurateStep(CurateConfig(**SMALL, reviser=scorer), scorer)  # the same path: still one model
    assert loads == [scorer] and step.reviser is step.scorer
    loads.clear()
    step = CurateStep(CurateConfig(**SMALL, reviser=str(reviser_dir)), scorer)  # resolved by the step
    assert loads == [scorer, str(reviser_dir)] and step.reviser.backend is not step.scorer.backend
    assert step.engines == 2 and step.paths == {"scorer": scorer, "reviser": str(reviser_dir)}


def test_the_reviser_writes_with_its_template_and_the_scorer_ranks_with_its_own(wide_tiny_dir, reviser_dir):
    scorer_dir = str(Path(wide_tiny_dir).resolve())
    cfg = CurateConfig(**SMALL, model="the-scorer", reviser="the-reviser")
    step = CurateStep(cfg, scorer_dir, {"reviser": str(reviser_dir)})
    calls = {}
    for role, backend in (("reviser", step.reviser_backend), ("scorer", step.backend)):
        for name in ("sample", "response_nll"):
            log = calls.setdefault((role, name), [])
            real = getattr(backend, name)

            def spy(first, *args, real=real, log=log, **kwargs):
                log.append(first)
                return real(first, *args, **kwargs)

            setattr(backend, name, spy)
    rows = step(RECORDS)
    assert calls[("scorer", "response_nll")] and calls[("reviser", "sample")]  # each did its own part
    assert not calls[("scorer", "sample")] and not calls[("reviser", "response_nll")]
    # the revision prompts were chat-formatted by the reviser's tokenizer
    r_tok = step.reviser.tok
    sampled = calls[("reviser", "sample")][0]
    assert all(r_tok.decode(ids).startswith(REVISER_MARK) for ids in sampled)
    users = {tuple(prompt_ids(r_tok, revision_prompt("reduce", prompt_text(r), r["response"],
                                                     pick_keywords(cfg.keywords, r["response"]))))
             for r in RECORDS}
    assert {tuple(ids) for ids in sampled} == users
    model, tok = load_lm(scorer_dir, "float32")
    r_model, _ = load_lm(str(reviser_dir), "float32")
    for row in rows:
        assert (row["model"], row["reviser"]) == ("the-scorer", "the-reviser")
        for text, ppl in ((row["original"], row["ppl_before"]), (row["curated"], row["ppl_after"])):
            assert [ppl] == pytest.approx(perplexities(model, tok, [row["instruction"]], [text]), rel=1e-4)
        assert not math.isclose(row["ppl_before"], perplexities(r_model, r_tok, [row["instruction"]],
                                                                [row["original"]])[0], rel_tol=1e-3)


def test_the_screen_checks_each_model_against_its_own_context(tiny_model_dir, tmp_path):
    cfg = CurateConfig(**SMALL)
    rec = RECORDS[0]

    def engine(tokens):
        return LMEngine(HFEngine.load(str(widen_context(tiny_model_dir, tmp_path / str(tokens), tokens)), "float32"))

    wide = engine(2048)
    revise_need = LengthScreen(cfg, wide).tokens_needed(rec)
    score_need = wide.sequence_tokens(prompt_text(rec), rec["response"])
    assert score_need < revise_need  # the revision prompt holds the answer and the rewriting request
    short_reviser, short_scorer = engine(revise_need - 1), engine(score_need - 1)
    assert LengthScreen(cfg, wide, wide)(rec, "in:1") is rec
    why = LengthScreen(cfg, short_reviser, wide)(rec, "in:1").reason
    assert why == f"text too long: needs {revise_need} tokens, the reviser's limit is {revise_need - 1}"
    why = LengthScreen(cfg, wide, short_scorer)(rec, "in:1").reason
    assert why == f"text too long: needs {score_need} tokens, the scorer's limit is {score_need - 1}"
    assert "the model's limit" in LengthScreen(cfg, short_reviser)(rec, "in:1").reason  # one model, both roles
    assert LengthScreen(cfg, engine(revise_need), engine(score_need))(rec, "in:1") is rec


class TableChecks:
    """The model checks as tables (not a model): P(yes) per response for safety and per rewrite for
    faithfulness; it records what it was asked."""

    def __init__(self, safety, faithful):
        self.p_safe, self.p_faithful, self.asked = safety, faithful, {"safety": [], "faithfulness": []}

    def safety(self, prompts, responses):
        self.asked["safety"] += list(responses)
        return [self.p_safe[r] for r in responses]

    def faithfulness(self, originals, rewrites):
        self.asked["faithfulness"] += list(zip(originals, rewrites))
        return [self.p_faithful[r] for r in rewrites]


ORIG = RECORDS[0]["response"]
# S2 is the most novel but judged without safety advice; S1 then S4 lead by perplexity, and S1 is
# judged unfaithful; S3 carries no seed phrase: the model, not the keywords, gates under "model"
CANDS = {(0.5, 0.9): "S1: boil the egg, mind the steam.", (0.5, 1.0): "S2: boil the egg.",
         (1.0, 0.9): "S3: cook the egg, cool it, mind the pot.", (1.0, 1.0): "S4: boil the egg with caution."}
PPL = {ORIG: 10.0, CANDS[(0.5, 0.9)]: 30.0, CANDS[(0.5, 1.0)]: 40.0, CANDS[(1.0, 0.9)]: 20.0,
       CANDS[(1.0, 1.0)]: 25.0}
P_SAFE = {ORIG: 0.1, CANDS[(0.5, 0.9)]: 0.9, CANDS[(0.5, 1.0)]: 0.2, CANDS[(1.0, 0.9)]: 0.8,
          CANDS[(1.0, 1.0)]: 0.6}
P_FAITHFUL = {CANDS[(0.5, 0.9)]: 0.3, CANDS[(0.5, 1.0)]: 0.9, CANDS[(1.0, 0.9)]: 0.9, CANDS[(1.0, 1.0)]: 0.9}


@pytest.mark.parametrize("weight,want,finalists", [
    (0.0, "S4", ["S1", "S4"]),  # by perplexity: S1 30, S4 25 (S3 20 is not asked)
    (10.0, "S3", ["S1", "S3"]),  # log(ppl) + 10 P: S1 12.4, S3 11.0, S4 9.2
])
def test_model_checks_gate_rank_and_judge_the_finalists(weight, want, finalists):
    cfg = CurateConfig(objective="amplify", rounds=1, beam=1, temperatures=[0.5, 1.0], top_ps=[0.9, 1.0],
                       tolerance=1.0, faithful=False, safety_check="model", faithfulness_check="model",
                       safety_weight=weight)
    prompt = revision_prompt("amplify", prompt_text(RECORDS[0]), ORIG, pick_keywords(cfg.keywords, ORIG))
    reviser = FixedCandidates(candidates={(prompt, t, p): c for (t, p), c in CANDS.items()})
    checks = TableChecks(P_SAFE, P_FAITHFUL)
    search = BeamSearch(reviser, FixedCandidates(ppl=PPL), OfflineJudge(), cfg, checks=checks)
    row = search.run([RECORDS[0]])[0]
    assert row["curated"].startswith(want + ":") and (row["safety_before"], row["safety_after"]) == (
        0.1, P_SAFE[row["curated"]])
    assert checks.asked["safety"] == [ORIG] + list(CANDS.values())  # the original and every candidate
    assert [r.split(":")[0] for o, r in checks.asked["faithfulness"]] == finalists  # the top 2k only
    assert all(o == ORIG for o, _ in checks.asked["faithfulness"])
    assert (search.stats["unsafe_model"], search.stats["unfaithful_model"]) == (1, 1)


def test_a_model_check_without_the_module_is_refused_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "buckle.curation.method.model_checks", None)
    cfg = CurateConfig(faithfulness_check="model")
    with pytest.raises(NotImplementedError, match="faithfulness_check"):
        BeamSearch(None, None, OfflineJudge(), cfg, check_engine=object())
    with pytest.raises(NotImplementedError, match="safety_check, faithfulness_check"):  # before any load
        CurateStep(cfg.model_copy(update={"safety_check": "model"}), "/nonexistent/model")


def test_the_check_model_defaults_to_the_reviser_and_is_loaded_once(wide_tiny_dir, reviser_dir, loads,
                                                                      monkeypatch):
    built = []
    fake = types.ModuleType("buckle.curation.method.model_checks")
    fake.ModelChecks = type("ModelChecks", (), {"__init__": lambda self, engine: built.append(engine)})
    monkeypatch.setitem(sys.modules, "buckle.curation.method.model_checks", fake)
    scorer = str(Path(wide_tiny_dir).resolve())
    step = CurateStep(CurateConfig(**SMALL, reviser=str(reviser_dir), safety_check="model"), scorer)
    assert loads == [scorer, str(reviser_dir)] and built == [step.reviser_backend]
    loads.clear()
    step = CurateStep(CurateConfig(**SMALL, reviser=str(reviser_dir), faithfulness_check="model",
                                   check_model=scorer), scorer)
    assert loads == [scorer, str(reviser_dir)] and built[-1] is step.backend  # a model already loaded


def test_the_model_checks_run_on_the_check_model(wide_tiny_dir, reviser_dir):
    pytest.importorskip("buckle.curation.method.model_checks")
    cfg = CurateConfig(**{**SMALL, "beam": 1}, reviser=str(reviser_dir), safety_check="model",
                       faithfulness_check="model")
    step = CurateStep(cfg, str(Path(wide_tiny_dir).resolve()))
    rows = step(RECORDS)
    assert step.check_backend is step.reviser_backend and step.engines == 2
    assert all(0.0 <= r[k] <= 1.0 for r in rows for k in ("safety_before", "safety_after"))  # P(yes)
    assert 0 < step.stats["checked_model"] <= 2 * len(RECORDS)  # the top 2k survivors of each record


def test_the_manifest_and_summary_name_both_models(wide_tiny_dir, reviser_dir, tmp_path):
    from buckle.curation.io.store import read_parts
    from buckle.curation.io.summary import format_summary
    from buckle.launcher.cmd_curate import curate

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    cfg = CurateConfig(**SMALL, model=str(wide_tiny_dir), reviser=str(reviser_dir))
    result = curate(cfg, str(src), str(tmp_path / "out"), progress=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["models"] == {"scorer": {"name": str(wide_tiny_dir), "path": str(Path(wide_tiny_dir).resolve())},
                                  "reviser": {"name": str(reviser_dir), "path": str(reviser_dir)}}
    assert manifest["config"]["reviser"] == str(reviser_dir) and manifest["status"] == "done"
    rows = read_parts(tmp_path / "out")
    assert {(r["model"], r["reviser"]) for r in rows} == {(str(wide_tiny_dir), str(reviser_dir))}
    assert f"models: {reviser_dir} wrote the candidates, {wide_tiny_dir} ranked them" in format_summary(result)


@pytest.mark.ray
def test_curate_on_ray_each_actor_holds_both_models(wide_tiny_dir, reviser_dir, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ray"))
    from ray_util import driver_env, kill_tagged, new_tag, start_buckle

    from buckle.curation.io.store import read_parts

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out, tag = tmp_path / "out", new_tag()
    args = ["curate", "--input", str(src), "--output", str(out), "--model", str(wide_tiny_dir),
            "--reviser", str(reviser_dir), "--objective", "reduce", "--rounds", "1", "--beam", "1",
            "--temperatures", "1.0", "--top-ps", "1.0", "--max-new-tokens", "8", "--executor", "ray",
            "--num-workers", "1", "--no-progress"]
    proc = start_buckle(args, driver_env(tag), tmp_path / "log")
    try:
        assert proc.wait(timeout=300) == 0, (tmp_path / "log").read_text()[-3000:]
    finally:
        kill_tagged(tag)
    log = (tmp_path / "log").read_text()
    assert "read 2 = curated 2 + quarantined 0" in log and f"models: {reviser_dir} wrote the candidates" in log
    rows = read_parts(out)
    assert {(r["model"], r["reviser"]) for r in rows} == {(str(wide_tiny_dir), str(reviser_dir))}
    assert json.loads((out / "manifest.json").read_text())["models"]["reviser"]["path"] == str(reviser_dir)
    model, tok = load_lm(str(wide_tiny_dir), "float32")  # ranked by the scorer, on the actor too
    for row in rows:
        assert [row["ppl_before"]] == pytest.approx(perplexities(model, tok, [row["instruction"]],
                                                                [row["original"]]), rel=1e-3)
