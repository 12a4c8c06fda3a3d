"""Shards, the exactly-once sink, record isolation and actor sizing: the executor-independent parts."""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_util import check_exactly_once, read_quarantine, read_rows, write_input  # noqa: E402

from buckle.curation.io.records import Quarantine  # noqa: E402
from buckle.curation.io.reader import read_shard  # noqa: E402
from buckle.curation.io.sink import ShardSink, done_shards, drop_unfinished  # noqa: E402
from buckle.curation.io.sharding import parse_key, plan_shards  # noqa: E402


def _jsonl(path: Path, n: int, blank_every: int = 0) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"r{i}", "instruction": "q", "response": f"a {i}"}) + "\n")
            if blank_every and i % blank_every == 0:
                fh.write("\n")
    return path


def _ids(shards) -> list[str]:
    return [it["id"] for s in shards for _, it in read_shard(s) if isinstance(it, dict)]


def test_shards_cover_every_row_once_and_skip_blank_lines(tmp_path):
    src = _jsonl(tmp_path / "a.jsonl", 103, blank_every=7)
    plan = plan_shards(str(src), 10)
    assert [s.rows for s in plan.shards] == [10] * 10 + [3]
    assert _ids(plan.shards) == [f"r{i}" for i in range(103)]
    assert plan_shards(str(src), 10, limit=25).todo_rows == 25


def test_plan_cuts_only_the_gaps_between_finished_ranges(tmp_path):
    src = _jsonl(tmp_path / "a.jsonl", 100, blank_every=9)
    first = plan_shards(str(src), 10, limit=35).shards  # an earlier run with a limit
    done = [s.key for s in first[:2]] + [first[3].key]
    again = plan_shards(str(src), 16, done=done)  # rerun: other shard size, no limit
    assert [s.rows for s in first] == [10, 10, 10, 5]
    assert again.skipped_rows == 25 and again.skipped_shards == 3
    assert sorted(_ids(first[:2]) + _ids([first[3]]) + _ids(again.shards), key=lambda x: int(x[1:])) == \
        [f"r{i}" for i in range(100)]
    ranges = sorted(parse_key(k)[1:] for k in done + [s.key for s in again.shards])
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:])), "ranges overlap"


def test_parquet_shards_span_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"p{i}", "instruction": "q", "response": "a" if i != 5 else " "} for i in range(50)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet", row_group_size=7)
    plan = plan_shards(str(tmp_path), 12)
    items = [it for s in plan.shards for _, it in read_shard(s)]
    assert [it["id"] for it in items if isinstance(it, dict)] == [f"p{i}" for i in range(50) if i != 5]
    bad = [it for it in items if isinstance(it, Quarantine)]
    assert len(bad) == 1 and bad[0].where == "t.parquet:row 5" and "empty" in bad[0].reason


def test_duplicate_id_inside_a_shard_is_quarantined(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"id": "x", "instruction": "q", "response": r}) + "\n" for r in "ab"))
    items = read_shard(plan_shards(str(path), 10).shards[0])
    assert isinstance(items[0][1], dict)
    assert isinstance(items[1][1], Quarantine) and "duplicate id 'x' (first at d.jsonl:1)" in items[1][1].reason


def test_sink_commits_once_when_complete_and_retries_replace(tmp_path):
    sink = ShardSink(tmp_path, "scored")
    row = {"id": "a", "instruction": "q", "input": "", "response": "r", "source": "",
           "perplexity": 2.0, "tokens": 3, "node_id": "n1", "worker_pid": 7}
    sink.add("k1", 3, 0, "ok", row)
    sink.add("k1", 3, 0, "ok", {**row, "worker_pid": 8})  # a retried batch delivers row 0 again
    sink.add("k1", 3, 1, "bad", json.dumps({"where": "f:2", "reason": "x", "shard": "k1"}))
    assert not done_shards(tmp_path) and sink.unfinished() == ["k1"]
    sink.add("k1", 3, 2, "ok", {**row, "id": "b"})
    assert list(done_shards(tmp_path)) == ["k1"] and not sink.unfinished()
    sink.add("k1", 3, 1, "ok", row)  # a straggler after the commit changes nothing
    assert not sink.unfinished() and sink.counts["rows"] == 2
    assert [(r["id"], r["worker_pid"]) for r in read_rows(tmp_path)] == [("a", 8), ("b", 7)]
    assert len(read_quarantine(tmp_path)) == 1


def test_what_unfinished_shards_left_is_dropped_on_resume(tmp_path):
    from buckle.curation.io import store

    done, lost = "0a0a0a0a-0000000000-0000000010", "0a0a0a0a-0000000010-0000000020"
    lines = [{"where": "f:1", "shard": done}, {"where": "f:2", "shard": lost}, {"where": "g:3"}]
    (tmp_path / "quarantine.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    row = {"id": "a", "instruction": "q", "input": "", "response": "r", "source": "", "perplexity": 2.0, "tokens": 3}
    for key in (done, lost):  # a driver killed after writing the part of `lost`, before its marker
        store.write_part(tmp_path, "scored", [row], f"part-{key}.parquet")
    assert drop_unfinished(tmp_path, "scored", {done}) == 2
    assert [q["where"] for q in read_quarantine(tmp_path)] == ["f:1", "g:3"]
    assert [p.name for p in store.part_files(tmp_path, "scored")] == [f"part-{done}.parquet"]


def test_isolate_reruns_a_failed_batch_record_by_record():
    from buckle.curation.executors.apply import isolate

    calls = []

    def step(records):
        calls.append(len(records))
        if any(r["id"] == "bad" for r in records):
            raise ValueError("boom")
        return [{"id": r["id"]} for r in records]

    out = isolate(step, [{"id": "a"}, {"id": "bad"}, {"id": "c"}])
    assert out[0] == {"id": "a"} and out[2] == {"id": "c"}
    assert isinstance(out[1], ValueError) and calls == [3, 1, 1, 1]


@pytest.mark.parametrize("workers,nodes,want", [
    (1, [2], 1.9), (2, [2], 0.95), (2, [2, 2], 1.9), (3, [2, 2], 0.95), (4, [16], 3.97),
])
def test_actors_get_the_largest_cpu_share_that_fits(workers, nodes, want):
    from buckle.curation.executors.ray_executor import worker_resources

    res = worker_resources(workers, [{"Alive": True, "Resources": {"CPU": c}} for c in nodes])
    assert res["num_cpus"] == pytest.approx(want)
    assert sum(math.floor((c - 0.1) / res["num_cpus"] + 1e-9) for c in nodes) >= workers
    assert res["threads"] == max(1, int(want))


def test_gpu_clusters_get_one_gpu_per_actor():
    from buckle.curation.executors.ray_executor import worker_resources

    res = worker_resources(2, [{"Alive": True, "Resources": {"CPU": 8, "GPU": 2}}])
    assert res["num_gpus"] == 1 and res["num_cpus"] == 1


def test_local_score_matches_model_loss_and_resumes(tmp_path, tiny_model_dir):
    import torch

    from buckle.curation.config import CurateConfig
    from buckle.core.engine.hf_lm import load_lm, prompt_ids, response_ids
    from buckle.curation.executors import run

    data = write_input(tmp_path / "in.jsonl", 40)
    cfg = CurateConfig(shard_size=16, batch_size=4, dtype="float32")  # compared to a float32 loss below
    first = run(cfg, str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "score", str(tiny_model_dir))
    assert (first["read"], first["scored"], first["quarantined"]) == (42, 40, 2)
    rows = check_exactly_once(tmp_path / "out", data)
    reasons = sorted(q["reason"] for q in read_quarantine(tmp_path / "out"))
    assert reasons[0].startswith("malformed JSON") and re.search(r"longer than the limit \d+", reasons[1])

    model, tok = load_lm(str(tiny_model_dir), "float32")
    for row in rows[:3]:
        p, r = prompt_ids(tok, row["instruction"]), response_ids(tok, row["response"])
        ids = torch.tensor([p + r])
        labels = ids.clone()
        labels[0, :len(p)] = -100
        with torch.no_grad():
            want = math.exp(model(input_ids=ids, labels=labels).loss.item())
        assert row["perplexity"] == pytest.approx(want, rel=1e-4) and row["tokens"] == len(r)

    again = run(cfg, str(tmp_path / "in.jsonl"), str(tmp_path / "out"), "score", str(tiny_model_dir))
    assert again["shards_computed"] == 0 and again["shards_skipped"] == first["shards_computed"]
    assert (again["read"], again["scored"], again["quarantined"]) == (42, 40, 2)


def test_score_command_summary_and_errors(tmp_path, tiny_model_dir, capsys):
    from buckle.launcher.cli import main

    write_input(tmp_path / "in.jsonl", 10)
    args = ["score", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
            "--model", str(tiny_model_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "read 12 = scored 10 + quarantined 2" in out and "mean perplexity" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["counts"]["shards_computed"] == 1
    assert manifest["config"]["shard_size"] == 1024
    assert main(["score", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o2")]) == 2
    assert "input" in capsys.readouterr().err
    assert main([*args, "--num-workers", "0"]) == 2
    assert "num_workers" in capsys.readouterr().err


def test_workers_that_cannot_fit_are_a_config_error():
    from buckle.curation.executors.ray_executor import worker_resources

    with pytest.raises(ValueError, match="num_workers 3 is more than the cluster's 2 GPUs"):
        worker_resources(3, [{"Alive": True, "Resources": {"CPU": 8, "GPU": 2}}])
    with pytest.raises(ValueError, match="cpus_per_worker 1.5 x num_workers 2"):
        worker_resources(2, [{"Alive": True, "Resources": {"CPU": 2}}], cpus=1.5)
    assert worker_resources(2, [{"Alive": True, "Resources": {"CPU": 2}}], cpus=0.5)["num_cpus"] == 0.5


def test_a_datasets_id_is_sharded_by_rows(tmp_path, monkeypatch):
    import datasets

    from buckle.curation.io import reader

    rows = [{"id": f"h{i}", "instruction": "q", "response": "a" if i != 3 else ""} for i in range(30)]
    calls = []

    def fake_load(source, split):  # stands in for the hub: the same call on an offline machine
        calls.append((source, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    reader.load_dataset.cache_clear()
    plan = plan_shards("org/commonsense", 8, limit=20)
    assert [(s.fmt, s.start, s.end) for s in plan.shards] == [("dataset", 0, 8), ("dataset", 8, 16),
                                                               ("dataset", 16, 20)]
    items = [it for s in plan.shards for _, it in read_shard(s)]
    assert [it["id"] for it in items if isinstance(it, dict)] == [f"h{i}" for i in range(20) if i != 3]
    assert [it.where for it in items if isinstance(it, Quarantine)] == ["org/commonsense:row 3"]
    assert calls == [("org/commonsense", "train")]  # loaded once per process
    reader.load_dataset.cache_clear()
