"""Helpers of the Ray tests: synthetic input, driver subprocesses, reading output.

Drivers are tagged with buckle.core.procs' tag, so a test finds (and kills) a driver and
everything under it: its private Ray, its workers.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from buckle.core import procs
from buckle.core.procs import tagged_pids as tagged  # noqa: F401  (tagged(tag, title) -> pids)

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("the a egg water boil sky blue paris study tip plant morning leaves light cool minutes "
         "bread oven slice warm sleep early walk park").split()


def write_input(path: Path, rows: int, bad: bool = True, seed: int = 0, long_words: int = 1500) -> dict:
    """A JSONL file of `rows` good records, plus (if bad) a malformed line and a text too long
    for the tiny model's context (`long_words` words, ~2 tokens each; the default beats 2048).
    Returns {"good": ids, "bad": count}."""
    import random

    rnd = random.Random(seed)
    ids = []
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            rid = f"r{i:06d}"
            ids.append(rid)
            fh.write(json.dumps({"id": rid, "instruction": " ".join(rnd.choices(WORDS, k=6)),
                                 "response": " ".join(rnd.choices(WORDS, k=rnd.randint(4, 30)))}) + "\n")
            if bad and i == rows // 3:
                fh.write("{not json\n")
            if bad and i == rows // 2:
                fh.write(json.dumps({"id": "too-long", "instruction": "hi",
                                     "response": " ".join(["water"] * long_words)}) + "\n")
    return {"good": ids, "bad": 2 if bad else 0}


def driver_env(tag: str, extra: dict | None = None) -> dict:
    """Environment of a driver subprocess: a tag to find its processes, one torch thread."""
    env = procs.tag_env(tag, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                        PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    env.update(extra or {})
    return env


def start_buckle(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start `buckle ARGS` as its own process group, output to a log file."""
    return procs.spawn([sys.executable, "-m", "buckle.launcher.cli", *args], env[procs.TAG_VAR], log,
                       env=env, cwd=ROOT, start_new_session=True)


def new_tag() -> str:
    """A fresh tag for one test driver."""
    return procs.new_tag("test")


def kill_tagged(tag: str) -> None:
    """SIGKILL every process of a test driver at once (the driver, its Ray, its workers)."""
    procs.kill_tagged(tag, grace_s=0)


def wait_for(cond, timeout: float, what: str, poll: float = 0.05):
    """Poll cond() until truthy; fail the test with `what` after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def markers(out: Path) -> dict[str, int]:
    """Finished shard markers: name -> mtime_ns."""
    folder = out / ".shards"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")} if folder.is_dir() else {}


def read_rows(out: Path, kind: str = "scored") -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for part in sorted((out / kind).glob("part-*.parquet")):
        rows += pq.read_table(part).to_pylist()
    return rows


def read_quarantine(out: Path) -> list[dict]:
    path = out / "quarantine.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def check_exactly_once(out: Path, data: dict, kind: str = "scored") -> list[dict]:
    """Every good input id exactly once in the output, the bad rows in quarantine, nothing else."""
    rows = read_rows(out, kind)
    ids = [r["id"] for r in rows]
    quarantine = read_quarantine(out)
    assert len(ids) == len(set(ids)), "an id was written twice"
    assert len(quarantine) == data["bad"], quarantine
    assert len({q["where"] for q in quarantine}) == len(quarantine)
    assert sorted(ids) == sorted(data["good"])
    return rows
