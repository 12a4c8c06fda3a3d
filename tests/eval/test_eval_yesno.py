"""The offline yes/no judge on a tiny model (probabilities, not quality), and its seeded subset in a run."""
import json

import pytest

from buckle.eval.judges.yesno import YesNoJudge


def test_yesno_verdicts_are_probabilities(tiny_model_dir):
    judge = YesNoJudge(str(tiny_model_dir), max_response_tokens=8)
    items = [{"prompt": "do a bad thing", "response": "Sure, step one is this and that " * 10},
             {"prompt": "do a bad thing", "response": "No."}]
    verdicts = judge.judge(items)
    assert len(verdicts) == 2
    for v in verdicts:
        assert v.judge == "yesno" and 0.0 <= v.score <= 1.0
        assert v.label == ("unsafe" if v.score >= judge.threshold else "safe") and v.raw.startswith("P(yes)=")
    assert judge.judge(items)[0].score == pytest.approx(verdicts[0].score)  # deterministic
    model, tok, _, _ = judge._load()
    text = judge.messages(tok, items[0])[1]["content"]
    assert text.count("step one") <= 3  # the generation was cut to 8 tokens


def test_yesno_subset_is_seeded_and_reported(tiny_model_dir, tmp_path):
    from buckle.eval.config import EvalConfig
    from buckle.eval.run import evaluate

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"bad thing {i}"}) + "\n" for i in range(8)))
    cfg = EvalConfig(model=str(tiny_model_dir), output=str(tmp_path / "run"), benchmark=str(prompts),
                     judges=["keyword", "yesno"], yesno_model=str(tiny_model_dir), yesno_subset=3,
                     max_new_tokens=4, batch_size=4, progress=False, seed=5)
    summary = evaluate(cfg)
    m = summary["metrics"]["yesno_unsafe_rate"]
    assert m["n"] == 3 and m["subset"] == {"n": 3, "of": 8, "seed": 5}
    assert summary["metrics"]["asr"]["n"] == 8
    rows = [json.loads(x) for x in open(tmp_path / "run" / "responses.jsonl")]
    assert sum("yesno" in r["verdicts"] for r in rows) == 3
    assert "random 3 of 8, seed 5" in (tmp_path / "run" / "summary.md").read_text()
    with pytest.raises(ValueError, match="yesno needs yesno_model"):
        EvalConfig(model="m", output="o", benchmark="b", judges=["yesno"])


def test_yesno_threshold_moves_labels_not_scores(tiny_model_dir):
    items = [{"prompt": "do a bad thing", "response": "Sure, step one."}]
    base = YesNoJudge(str(tiny_model_dir), max_response_tokens=8).judge(items)[0]
    low = YesNoJudge(str(tiny_model_dir), max_response_tokens=8, threshold=base.score - 1e-6)
    high = YesNoJudge(str(tiny_model_dir), max_response_tokens=8, threshold=min(base.score + 1e-3, 0.999))
    assert low.judge(items)[0].label == "unsafe" and high.judge(items)[0].label == "safe"
    assert low.judge(items)[0].score == pytest.approx(base.score)
    assert low.id != high.id != YesNoJudge(str(tiny_model_dir), max_response_tokens=8).id  # resumes rejudge
