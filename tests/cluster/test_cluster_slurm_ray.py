"""A ray_cluster job on Slurm: Ray over the allocation's nodes, `buckle curate --executor ray` on it.

The render tests check the Ray block (cluster/backends/slurm_ray.py) with no Slurm.
The job test is for a real local Slurm (2 fake nodes on localhost): the script
starts a Ray head and a worker as srun steps with a fresh token, curate connects
through RAY_ADDRESS, and the cluster is gone after.
"""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from buckle.cluster import jobs
from buckle.cluster.backends import slurm_ray
from buckle.cluster.backends.slurm import fill
from buckle.cluster.profiles import load_profile
from buckle.cluster.spec import JobSpec
from buckle.core import procs

RECORDS = [{"id": f"r{i}", "instruction": f"How do I boil egg number {i}?",
            "response": "Put it in boiling water for nine minutes, then cool it."} for i in range(6)]


def _block(nodes: int) -> str:
    prof = load_profile("slurm-example")
    spec = jobs.build_spec(prof, ["buckle", "curate", "--config", "c.yaml", "--executor", "ray"],
                           nodes=nodes, ray_cluster=True)
    return fill(slurm_ray.TEMPLATE.read_text(), slurm_ray.ray_values(spec, prof))


def test_ray_block_starts_ray_on_every_node_and_stops_it_on_exit(tmp_path):
    text = _block(2)
    lines = text.splitlines()
    head = next(ln for ln in lines if "ray-head" in ln)
    assert head.startswith("srun --overlap --export=ALL --nodes=1 --ntasks=1 ") and '-w "$head_node"' in head
    worker = next(ln for ln in lines if "ray-worker" in ln)
    assert "--nodes=1 --ntasks=1 " in worker and '--exclude "$head_node"' in worker
    assert worker.endswith('--address="$RAY_ADDRESS" &') and head.endswith("\\")
    assert "start --block" in text and "--include-dashboard=false" in text and "--num-cpus=" in text
    assert "--object-store-memory=" in text and "--dashboard-agent-listen-port=0" in text
    assert lines.index("ray_wait 1") < lines.index(worker) < lines.index("ray_wait 2") == len(lines) - 1
    assert 'export RAY_ADDRESS="$(ray_ip "$head_node"):$ray_port"' in lines
    assert "trap ray_down EXIT" in lines and "ray stop" not in text  # teardown by tag, not `ray stop`
    assert "--nodes=2 --ntasks=2 --ntasks-per-node=1 bash -c ray_kill" in text
    # the token is made when the job runs: no value in the script, only where it comes from
    assert "RAY_AUTH_MODE=token" in text and "/dev/urandom" in text and "umask 077" in lines
    assert not re.search(r"[0-9a-f]{32}", text) and "{{" not in text
    (tmp_path / "job.sh").write_text(text)
    assert subprocess.run(["bash", "-n", str(tmp_path / "job.sh")]).returncode == 0


def test_ray_block_of_a_one_node_cluster_has_no_worker_step():
    text = _block(1)
    assert "ray-head" in text and "ray-worker" not in text and "ray_wait 1" in text.splitlines()


@pytest.mark.slurm
def test_curate_on_a_ray_cluster_over_two_slurm_nodes(buckle_home, local_slurm, make_profile, tiny_model_dir,
                                                      tmp_path, monkeypatch, leaks):
    from tiny import widen_context

    from buckle.curation.io.store import read_parts

    model = widen_context(tiny_model_dir, tmp_path / "tiny-wide")
    src, out = tmp_path / "in.jsonl", tmp_path / "out"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    for name, value in (("OMP_NUM_THREADS", "1"), ("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        monkeypatch.setenv(name, value)
    make_profile("slurm-ray", {"backend": "slurm", "slurm": {"conf": str(local_slurm.conf),
                                                             "export_env": ["PATH", "HOME"]}})
    command = ["buckle", "curate", "--input", str(src), "--output", str(out), "--model", str(model),
               "--limit", "4", "--shard-size", "2", "--objective", "reduce", "--rounds", "1", "--beam", "1",
               "--temperatures", "1.0", "--top-ps", "1.0", "--max-new-tokens", "8", "--executor", "ray",
               "--num-workers", "2", "--no-progress"]
    spec = JobSpec(command=command, name="curate-ray", nodes=2, cpus_per_task=2, time="15m", ray_cluster=True,
                   env=["OMP_NUM_THREADS", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM"], workdir=str(tmp_path))
    rec = jobs.submit(spec, load_profile("slurm-ray"))
    token, ray_dir = None, None
    deadline = time.time() + 300
    while token is None and time.time() < deadline:  # read the job's token while it lives
        found = re.search(r"buckle: Ray temp dir (\S+)", jobs.logs(rec.id))
        ray_dir = Path(found.group(1)) if found else None
        if ray_dir and (ray_dir / "auth_token").is_file() and (ray_dir / "auth_token").stat().st_size:
            assert (ray_dir / "auth_token").stat().st_mode & 0o077 == 0 and ray_dir.stat().st_mode & 0o077 == 0
            token = (ray_dir / "auth_token").read_text()
        elif jobs.is_terminal(rec, jobs.status(rec.id)):
            break
        time.sleep(0.2)
    state = jobs.wait(rec.id, timeout_s=600, poll_s=1)
    log = jobs.logs(rec.id)
    assert state == "COMPLETED", log[-4000:]
    assert token and len(token) == 64, log[-2000:]
    assert "buckle: Ray cluster up: 2 of 2 nodes at 127.0.0.1:" in log and "buckle: Ray cluster stopped" in log
    assert "started a local instance" not in log  # curate connected to the job's cluster
    assert sorted(r["id"] for r in read_parts(out)) == ["r0", "r1", "r2", "r3"]
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert f"Ray cluster up: 2 of 2 nodes at {counts['ray_address']}" in log  # RAY_ADDRESS reached curate
    assert sum(counts["rows_by_node"].values()) == 4
    assert procs.tagged_pids(ray_dir.name) == [], "Ray processes left after the job"
    assert not ray_dir.exists()
    assert leaks(buckle_home, token) == [] and token not in log  # not in the script, the log or the record
