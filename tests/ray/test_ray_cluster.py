"""A two-node Ray cluster on this machine (ray start --head + ray start --address; the
ray_two_nodes fixture): workers land on both nodes, output complete, same numbers as local."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tiny import widen_context

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_util import (check_exactly_once, driver_env, kill_tagged, manifest, new_tag,  # noqa: E402
                      read_quarantine, read_rows, start_buckle, tagged, write_input)

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def wide_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a 2048-token context, room for curation's revision prompts."""
    return widen_context(tiny_model_dir, tmp_path_factory.mktemp("tiny-wide-ray"))


def _run(cluster, tmp_path: Path, args: list[str]) -> str:
    tag = new_tag()
    env = driver_env(tag, {k: v for k, v in cluster.env.items() if k.startswith("RAY_AUTH")})
    proc = start_buckle([*args, "--executor", "ray", "--ray-address", cluster.address, "--num-workers", "2"],
                        env, tmp_path / "log")
    try:
        code = proc.wait(timeout=300)
        assert not tagged(tag), "the driver left processes behind (it must not start a cluster)"
    finally:
        kill_tagged(tag)
    log = (tmp_path / "log").read_text()
    assert code == 0, log[-3000:]
    assert "started a local instance" not in log
    return log


def test_score_spreads_over_both_nodes_and_matches_local(ray_two_nodes, tmp_path, tiny_model_dir):
    from buckle.curation.config import CurateConfig
    from buckle.curation.executors import run

    data = write_input(tmp_path / "in.jsonl", 1500)
    out = tmp_path / "out"
    _run(ray_two_nodes, tmp_path, ["score", "--input", str(tmp_path / "in.jsonl"), "--output", str(out),
                               "--model", str(tiny_model_dir), "--shard-size", "100"])
    rows = check_exactly_once(out, data)
    counts = manifest(out)["counts"]
    by_resource = {tuple(res): counts["rows_by_node"][node] for node, res in counts["node_resources"].items()}
    assert set(by_resource) == {("node_a",), ("node_b",)} and all(by_resource.values()), counts
    assert {r["node_id"] for r in rows} == set(counts["rows_by_node"])
    assert all(pid > 0 for pid in (r["worker_pid"] for r in rows))
    assert ray_two_nodes.pids(), "the driver stopped a cluster it did not start"

    local = tmp_path / "local"
    run(CurateConfig(shard_size=100), str(tmp_path / "in.jsonl"), str(local), "score", str(tiny_model_dir))
    want = {r["id"]: r for r in read_rows(local)}
    for row in rows:
        assert row["perplexity"] == pytest.approx(want[row["id"]]["perplexity"], rel=1e-4)
        assert row["tokens"] == want[row["id"]]["tokens"]
    assert sorted(q["where"] for q in read_quarantine(out)) == sorted(q["where"] for q in read_quarantine(local))


def test_curate_on_two_nodes_uses_the_same_step(ray_two_nodes, tmp_path, wide_model):
    data = write_input(tmp_path / "in.jsonl", 12)
    out = tmp_path / "out"
    log = _run(ray_two_nodes, tmp_path, [
        "curate", "--input", str(tmp_path / "in.jsonl"), "--output", str(out), "--model", str(wide_model),
        "--rounds", "1", "--beam", "1", "--temperatures", "1.0", "--top-ps", "1.0", "--max-new-tokens", "8",
        "--batch-size", "2", "--shard-size", "4", "--no-progress"])
    rows = check_exactly_once(out, data, kind="curated")
    from buckle.curation.io.records import OUTPUT_COLUMNS

    assert set(OUTPUT_COLUMNS) <= set(rows[0])
    reasons = sorted(q["reason"] for q in read_quarantine(out))
    assert reasons[0].startswith("malformed JSON") and "too long" in reasons[1]
    assert "read 14 = curated 12 + quarantined 2" in log
    # 12 rows may all go to whichever actor is ready first; spreading is the score test's job
    assert {r["node_id"] for r in rows} <= set(manifest(out)["counts"]["node_resources"])
