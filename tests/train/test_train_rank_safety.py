"""Run directories under several ranks: only the global rank 0 probes the directory and writes
the manifest; the other ranks wait for it (two local processes, no Slurm)."""
import json
import os
import subprocess
import sys

import pytest

from buckle.core.manifest import RunDir

# What `buckle train` does to its run directory on every rank, over many fresh directories; the
# ranks start each one together (as srun starts them), which made the old shared .tmp file race.
SETUP = """
import os, sys, time
from pathlib import Path
from buckle.core.manifest import RunDir
from buckle.train.run import check_output_dir
root, n, rank = Path(sys.argv[1]), int(sys.argv[2]), os.environ["RANK"]
for i in range(n):
    (root / f"go-{i:02d}-{rank}").touch()
    deadline = time.time() + 30
    while not all((root / f"go-{i:02d}-{r}").exists() for r in "01") and time.time() < deadline:
        time.sleep(0.001)
    out = root / f"run-{i:02d}"
    check_output_dir(out)
    RunDir(out, "train", {"i": i}).finish(counts={"rank": int(os.environ["RANK"])})
"""

# Rank 0 cannot create its run directory; with torch.distributed up, rank 1 hears why.
DIST = """
import sys, torch.distributed as dist
from buckle.core.manifest import RunDir
dist.init_process_group("gloo")
try:
    RunDir(sys.argv[1], "train", {})
except (OSError, RuntimeError) as exc:
    print("ERROR", exc, flush=True)
dist.destroy_process_group()
"""


def _two_ranks(code, *args, timeout=120, **env):
    base = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", **env}
    procs = [subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env={**base, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    return [p.communicate(timeout=timeout) + (p.returncode,) for p in procs]


def test_two_ranks_set_up_twenty_run_dirs_with_one_manifest_each(tmp_path):
    for out, err, code in _two_ranks(SETUP, tmp_path, 20):
        assert code == 0, err
    for i in range(20):
        run = tmp_path / f"run-{i:02d}"
        assert [p.name for p in run.iterdir()] == ["manifest.json"]  # no .tmp, no .write-test left
        data = json.loads((run / "manifest.json").read_text())
        assert data["status"] == "done" and data["counts"] == {"rank": 0} and data["config"] == {"i": i}


def test_other_ranks_write_nothing(tmp_path, monkeypatch):
    first = RunDir(tmp_path / "run", "train", {"who": "rank 0"})
    before = (tmp_path / "run" / "manifest.json").read_text()
    monkeypatch.setenv("RANK", "1")
    other = RunDir(tmp_path / "run", "train", {"who": "rank 1"})
    other.finish(counts={"n": 1})
    assert (tmp_path / "run" / "manifest.json").read_text() == before
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["manifest.json"]
    first.finish()
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "done"


def test_a_rank_without_rank_zeros_manifest_fails_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("BUCKLE_RANK_WAIT_S", "0.5")
    with pytest.raises(RuntimeError, match=r"rank 1: rank 0 did not write the manifest of .*run within 0.5 s "
                                           r".*is not storage every node shares \(BUCKLE_RANK_WAIT_S"):
        RunDir(tmp_path / "run", "train", {})
    assert not (tmp_path / "run").exists()


def test_rank_zeros_error_reaches_the_other_rank_over_torch_distributed(tmp_path):
    from buckle.core.procs import free_port

    (tmp_path / "blocker").write_text("a file where the run's parent directory should be")
    results = _two_ranks(DIST, tmp_path / "blocker" / "run", MASTER_PORT=str(free_port()))
    (out0, err0, code0), (out1, err1, code1) = results
    assert code0 == 0 and code1 == 0, err0 + err1
    assert "ERROR output directory" in out0 and "is not writable" in out0
    assert out1.startswith("ERROR rank 1: rank 0 could not write the manifest of ")
    assert "PermissionError: output directory" in out1
