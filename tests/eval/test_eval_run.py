"""evaluate(): outputs, resume, and a judge endpoint that dies mid-run (tiny model, real HTTP server)."""
import json

import pytest
from fake_openai import FakeOpenAI, server  # noqa: F401 (server: the fixture)

from buckle.eval.config import EvalConfig
from buckle.eval.run import evaluate


@pytest.fixture
def files(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    lines = [json.dumps({"id": f"h{i}", "prompt": f"Explain how to do harmful thing number {i}"}) for i in range(10)]
    prompts.write_bytes(("\n".join(lines) + "\n").encode() + b'{"prompt": "bad \xff row"}\n')
    benign = tmp_path / "benign.jsonl"
    benign.write_text("\n".join(json.dumps({"id": f"b{i}", "instruction": f"How do I water plant {i}?",
                                            "response": "Water it in the morning so the leaves dry."})
                                for i in range(4)) + "\n", encoding="utf-8")
    return prompts, benign


def _cfg(tiny_model_dir, tmp_path, prompts, benign=None, **kw):
    return EvalConfig(model=str(tiny_model_dir), output=str(tmp_path / "run"), benchmark=str(prompts),
                      benign=str(benign) if benign else None, max_new_tokens=6, batch_size=4,
                      progress=False, **kw)


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_outputs_and_metrics(tiny_model_dir, tmp_path, files, server):
    prompts, benign = files
    cfg = _cfg(tiny_model_dir, tmp_path, prompts, benign, judge_backend="openai", judge_url=server.url,
               judge_model="fake", judge_backoff_s=0.01)
    summary = evaluate(cfg)
    out = tmp_path / "run"
    rows = _read(out / "responses.jsonl")
    assert [r["id"] for r in rows] == [f"h{i}" for i in range(10)]
    assert all(set(r["verdicts"]) == {"keyword", "policy"} for r in rows)
    assert all(r["verdicts"]["policy"]["raw"].startswith("#reason") for r in rows)
    rejected = _read(out / "rejected.jsonl")
    assert len(rejected) == 1 and rejected[0]["where"] == "prompts.jsonl:11"
    benign_rows = _read(out / "benign.jsonl")
    assert len(benign_rows) == 4 and all(r["ref_tokens"] > 0 and r["ref_ppl"] > 1 for r in benign_rows)
    assert all(r["verdicts"]["helpfulness"]["score"] == 4.0 for r in benign_rows)
    m = summary["metrics"]
    refusals = sum(r["verdicts"]["keyword"]["label"] == "refusal" for r in rows)
    assert m["asr"]["n"] == 10 and m["asr"]["k"] == 10 - refusals
    assert m["harmfulness_mean"]["n"] == 10 and m["helpfulness_mean"]["value"] == 4.0
    assert m["benign_ppl"]["n"] == 4 and m["benign_ppl"]["ci95"][0] <= m["benign_ppl"]["value"]
    assert summary["n_prompts"] == 10 and summary["n_rejected"] == 1
    assert json.loads((out / "summary.json").read_text())["metrics"].keys() == m.keys()
    assert "| ASR (keyword, no refusal) |" in (out / "summary.md").read_text()


def test_endpoint_dies_partial_results_kept_then_resumed(tiny_model_dir, tmp_path, files, server):
    prompts, _ = files
    cfg = _cfg(tiny_model_dir, tmp_path, prompts, judge_backend="openai", judge_url=server.url,
               judge_model="fake", judge_backoff_s=0.01, judge_max_retries=2, judges=["keyword", "policy"])
    server.die_after = 3
    with pytest.raises(RuntimeError, match=r"policy judge stopped: judge endpoint .* unreachable after 3 attempts.*"
                                           r"3 of 10 responses judged and kept in .*responses.jsonl; rerun"):
        evaluate(cfg)
    rows = _read(tmp_path / "run" / "responses.jsonl")
    assert len(rows) == 10 and all("response" in r and "keyword" in r["verdicts"] for r in rows)
    labels = [r["verdicts"]["policy"]["label"] for r in rows]
    assert labels.count("scored") == 3 and labels.count("error") == 7
    responses = [r["response"] for r in rows]

    server.die_after, server.bodies = None, []
    summary = evaluate(cfg)  # same command resumes: only the 7 missing verdicts are asked for
    assert len(server.bodies) == 7
    rows = _read(tmp_path / "run" / "responses.jsonl")
    assert [r["response"] for r in rows] == responses
    assert all(r["verdicts"]["policy"]["label"] == "scored" for r in rows)
    assert summary["metrics"]["harmfulness_mean"]["n"] == 10


def test_rerun_skips_answered_prompts_and_extends_limit(tiny_model_dir, tmp_path, files):
    prompts, _ = files
    evaluate(_cfg(tiny_model_dir, tmp_path, prompts, limit=4))
    first = _read(tmp_path / "run" / "responses.jsonl")
    summary = evaluate(_cfg(tiny_model_dir, tmp_path, prompts, limit=6))
    again = _read(tmp_path / "run" / "responses.jsonl")
    assert again[:4] == first and len(again) == 6
    assert summary["timings"]["generated_tokens"] == sum(r["tokens"] for r in again[4:])
    summary = evaluate(_cfg(tiny_model_dir, tmp_path, prompts, limit=6))
    assert "generate_s" not in summary["timings"]  # nothing left to generate


def test_other_generation_settings_refuse_the_same_output(tiny_model_dir, tmp_path, files):
    prompts, _ = files
    evaluate(_cfg(tiny_model_dir, tmp_path, prompts, limit=2))
    with pytest.raises(ValueError, match=r"max_new_tokens=6, not 9; use another --output"):
        evaluate(_cfg(tiny_model_dir, tmp_path, prompts, limit=2).model_copy(update={"max_new_tokens": 9}))


def test_config_errors_name_the_field(tmp_path):
    from buckle.core.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="judge_url"):
        load_config(EvalConfig, None, {"model": "m", "output": "o", "benchmark": "b", "judge_backend": "openai"})
    with pytest.raises(ConfigError, match="judges.*unknown judge 'gpt'"):
        load_config(EvalConfig, None, {"model": "m", "output": "o", "benchmark": "b", "judges": ["gpt"]})
    with pytest.raises(ConfigError, match="max_new_tokenz: unknown key"):
        load_config(EvalConfig, None, {"model": "m", "output": "o", "benchmark": "b", "max_new_tokenz": 3})
