"""Faults on a real local Ray: a worker SIGKILLed mid-run, a driver SIGKILLed and rerun, a judge failing."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ray_util import (check_exactly_once, driver_env, kill_tagged, manifest, markers,  # noqa: E402
                      new_tag, read_quarantine, read_rows, start_buckle, tagged, wait_for, write_input)

pytestmark = pytest.mark.ray
ROWS, SHARD = 8000, 200
SHARDS = ROWS // SHARD + 1  # the two bad lines push the last shard past a multiple of SHARD


def _score_args(tmp_path: Path, model: Path) -> list[str]:
    return ["score", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out"),
            "--model", str(model), "--executor", "ray", "--num-workers", "1",
            "--shard-size", str(SHARD)]


def test_worker_killed_mid_run_is_replaced_and_every_record_lands_once(tmp_path, tiny_model_dir):
    data = write_input(tmp_path / "in.jsonl", ROWS)
    tag, out = new_tag(), tmp_path / "out"
    proc = start_buckle(_score_args(tmp_path, tiny_model_dir), driver_env(tag), tmp_path / "log")
    try:
        wait_for(lambda: len(markers(out)) >= 1, 240, "the first finished shard")
        victims = tagged(tag, b"ray::MapWorker")
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
        killed_at = len(markers(out))
        assert proc.wait(timeout=300) == 0, (tmp_path / "log").read_text()[-3000:]
    finally:
        kill_tagged(tag)
    assert killed_at < SHARDS, "the run ended before the worker was killed"
    rows = check_exactly_once(out, data)
    pids = {r["worker_pid"] for r in rows}
    assert victims[0] in pids and len(pids) >= 2, f"no replacement worker wrote rows: {pids}"
    counts = manifest(out)["counts"]
    assert counts["read"] == ROWS + 2 and counts["scored"] == ROWS and counts["quarantined"] == 2
    assert counts["shards_computed"] == SHARDS and counts["shards_skipped"] == 0


def test_driver_killed_then_rerun_resumes_without_recomputing(tmp_path, tiny_model_dir):
    data = write_input(tmp_path / "in.jsonl", ROWS)
    out, args = tmp_path / "out", _score_args(tmp_path, tiny_model_dir)
    tag = new_tag()
    proc = start_buckle(args, driver_env(tag), tmp_path / "log1")
    try:
        wait_for(lambda: len(markers(out)) >= 3, 240, "three finished shards")
        killed_pid = proc.pid
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_tagged(tag)  # the driver's Ray dies with it; this also takes stragglers
    before = markers(out)
    assert 3 <= len(before) < SHARDS
    assert manifest(out)["status"] == "running"  # the killed run never finished its manifest

    tag = new_tag()
    proc = start_buckle(args, driver_env(tag), tmp_path / "log2")
    try:
        assert proc.wait(timeout=300) == 0, (tmp_path / "log2").read_text()[-3000:]
    finally:
        kill_tagged(tag)
    after = markers(out)
    assert not list(Path(tempfile.gettempdir()).glob(f"buckle-ray-{killed_pid}-*")), \
        "the killed driver's Ray temp dir was not swept by the rerun"
    assert all(after[name] == mtime for name, mtime in before.items()), "a finished shard was rewritten"
    check_exactly_once(out, data)
    counts = manifest(out)["counts"]
    assert counts["shards_skipped"] == len(before)
    assert counts["shards_computed"] == SHARDS - len(before)
    assert counts["read"] == ROWS + 2 and counts["scored"] == ROWS and counts["quarantined"] == 2
    assert manifest(out)["previous_runs"][-1]["status"] == "running"


def test_a_judge_failure_on_ray_quarantines_only_its_record(tmp_path, tiny_model_dir):
    """The same per-record isolation as the local executor (tests/curation/test_curation_executor.py)."""
    import json

    from fake_openai import FakeOpenAI
    from tiny import widen_context

    model = widen_context(tiny_model_dir, tmp_path / "wide")
    with open(tmp_path / "in.jsonl", "w") as fh:
        for i in range(5):  # the fake judge answers a text carrying BROKENJSON with an unreadable reply
            text = f"Boil the egg for {i + 5} minutes, then cool it in water." + (" BROKENJSON" if i == 2 else "")
            fh.write(json.dumps({"id": f"r{i}", "instruction": "How do I boil an egg?", "response": text}) + "\n")
    server = FakeOpenAI().start()
    (tmp_path / "c.yaml").write_text(
        f"judge: openai\njudge_url: {server.url}\njudge_model: fake\njudge_retries: 0\n"
        "rounds: 1\nbeam: 1\ntemperatures: [1.0]\ntop_ps: [1.0]\nmax_new_tokens: 6\nobjective: reduce\n"
        "batch_size: 2\nshard_size: 4\n")
    out, tag = tmp_path / "out", new_tag()
    args = ["curate", "--config", str(tmp_path / "c.yaml"), "--input", str(tmp_path / "in.jsonl"),
            "--output", str(out), "--model", str(model), "--executor", "ray", "--num-workers", "1", "--no-progress"]
    proc = start_buckle(args, driver_env(tag), tmp_path / "log")
    try:
        assert proc.wait(timeout=300) == 0, (tmp_path / "log").read_text()[-3000:]
    finally:
        kill_tagged(tag)
        server.stop()
    assert "read 5 = curated 4 + quarantined 1" in (tmp_path / "log").read_text()
    assert sorted(r["id"] for r in read_rows(out, kind="curated")) == ["r0", "r1", "r3", "r4"]
    [entry] = read_quarantine(out)
    assert entry["id"] == "r2" and entry["reason"].startswith("step failed: RuntimeError: helpfulness judge")
