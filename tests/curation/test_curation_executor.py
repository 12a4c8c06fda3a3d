"""The one executor protocol, locally: per-record isolation, resume by shard markers, progress."""
from __future__ import annotations

import json

import pytest

from buckle.curation.config import CurateConfig, ScoreConfig
from buckle.curation.executors import run
from buckle.curation.io import store
from buckle.curation.io.sink import MARKERS

FAST = dict(rounds=1, beam=1, temperatures=[1.0], top_ps=[1.0], max_new_tokens=6, objective="reduce",
            batch_size=2, shard_size=4)


def _records(path, n, broken=()):
    """n good records; those in `broken` carry the fake judge's marker for an unreadable reply."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = f"Boil the egg for {i + 5} minutes, then cool it in water." + (" BROKENJSON" if i in broken else "")
            fh.write(json.dumps({"id": f"r{i}", "instruction": "How do I boil an egg?", "response": text}) + "\n")
    return path


@pytest.fixture
def judge_server():
    from fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_a_judge_failure_quarantines_only_its_record(tmp_path, wide_tiny_dir, judge_server):
    src = _records(tmp_path / "in.jsonl", 5, broken={2})
    cfg = CurateConfig(**FAST, judge="openai", judge_url=judge_server.url, judge_model="fake", judge_retries=0)
    out = tmp_path / "out"
    result = run(cfg, str(src), str(out), "curate", str(wide_tiny_dir), progress=False)
    assert (result["read"], result["curated"], result["quarantined"]) == (5, 4, 1)
    assert sorted(r["id"] for r in store.read_parts(out)) == ["r0", "r1", "r3", "r4"]
    [entry] = store.read_quarantine(out)
    assert entry["where"] == "in.jsonl:3" and entry["id"] == "r2"
    assert entry["reason"].startswith("step failed: RuntimeError: helpfulness judge")
    assert result["texts"] == 4 and result["timings"]["load_s"] > 0

    again = run(cfg, str(src), str(out), "curate", str(wide_tiny_dir), progress=False)
    assert (again["read"], again["curated"], again["quarantined"]) == (5, 4, 1)
    assert again["curated_new"] == 0 and again["skipped_existing"] == 4 and again["shards_computed"] == 0
    assert len(store.read_quarantine(out)) == 1


def test_a_rerun_never_adds_rows(tmp_path, tiny_model_dir):
    src = _records(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out"
    first = run(ScoreConfig(shard_size=4), str(src), str(out), "score", str(tiny_model_dir), progress=False)
    assert (first["read"], first["scored"], first["shards_computed"]) == (10, 10, 3)
    # a driver killed between writing a part and its marker: that shard is redone, not added
    marker = sorted((out / MARKERS).glob("*.json"))[1]
    marker.unlink()
    again = run(ScoreConfig(shard_size=3, limit=9), str(src), str(out), "score", str(tiny_model_dir),
                progress=False)
    ids = [r["id"] for r in store.read_parts(out, "scored")]
    assert sorted(ids) == sorted(f"r{i}" for i in range(10)) and again["scored"] == 10
    assert again["shards_skipped"] == 2 and again["scored_new"] == 4
    third = run(ScoreConfig(shard_size=2), str(src), str(out), "score", str(tiny_model_dir), progress=False)
    assert third["shards_computed"] == 0 and len(store.read_parts(out, "scored")) == 10
    assert third["mean_perplexity"] == pytest.approx(first["mean_perplexity"], rel=1e-6)


def test_parts_not_written_by_shards_are_an_error(tmp_path, tiny_model_dir):
    src = _records(tmp_path / "in.jsonl", 2)
    row = {"id": "r0", "instruction": "q", "input": "", "response": "r", "source": "", "perplexity": 1.0,
           "tokens": 1}
    store.write_part(tmp_path / "out", "scored", [row], "part-20240101-abc.parquet")
    with pytest.raises(ValueError, match="was not written shard by shard"):
        run(ScoreConfig(), str(src), str(tmp_path / "out"), "score", str(tiny_model_dir), progress=False)


def test_the_local_bar_shows_rows_percent_and_eta(tmp_path, tiny_model_dir, capsys):
    src = _records(tmp_path / "in.jsonl", 6)
    run(ScoreConfig(shard_size=2, batch_size=1), str(src), str(tmp_path / "out"), "score", str(tiny_model_dir))
    err = capsys.readouterr().err
    assert "score:" in err and "/6 [" in err and "%|" in err and "row/s" in err
    assert "00:00<" in err  # tqdm's elapsed<remaining: the ETA


def test_an_unknown_kind_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown kind of run 'rank'"):
        run(ScoreConfig(), "in.jsonl", str(tmp_path), "rank", "model")
