"""Slurm backend against a real local Slurm (2 fake nodes on localhost) started by a fixture."""
import hashlib
import sys
import time
from pathlib import Path

import pytest

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobStore
from buckle.launcher.cli import main

pytestmark = pytest.mark.slurm

# Each task checks the variables torch.distributed/DeepSpeed read, then reports them.
RANK_CHECK = """
import os
r, w, lr, nr = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK"))
assert w == 2 and 0 <= r < w and lr == 0 and nr == r, (r, w, lr, nr)
assert os.environ["MASTER_ADDR"] == "127.0.0.1" and int(os.environ["MASTER_PORT"]) >= 20000
print(f"rank {r} of {w} node {nr} ok", flush=True)
"""


@pytest.fixture
def slurm_profile(local_slurm, make_profile):
    return make_profile("slurm-test", {"backend": "slurm", "allow_any_command": True,
                                       "slurm": {"conf": str(local_slurm.conf), "export_env": ["PATH", "HOME"]}})


def _last_job():
    return next(JobStore().all())


def test_two_task_srun_checks_rank_variables(buckle_home, slurm_profile, capsys):
    argv = ["submit", "--profile", slurm_profile, "--nodes", "2", "--launcher", "srun", "--time", "5m",
            "--", sys.executable, "-c", RANK_CHECK]
    assert main(argv) == 0
    rec = _last_job()
    assert rec.backend_id.isdigit() and capsys.readouterr().out.startswith(f"{rec.id} PENDING (slurm ")
    assert jobs.wait(rec.id, timeout_s=120, poll_s=0.5) == "COMPLETED"
    out = jobs.logs(rec.id)
    assert "rank 0 of 2 node 0 ok" in out and "rank 1 of 2 node 1 ok" in out
    assert "rendezvous 127.0.0.1:" in out
    assert Path(rec.info["output"]).name == f"slurm-{rec.backend_id}.out"
    assert main(["status", rec.id]) == 0 and "COMPLETED" in capsys.readouterr().out


def test_failing_rank_check_fails_the_job(buckle_home, slurm_profile):
    # one task with WORLD_SIZE 1 breaks the check: the job must end FAILED, not COMPLETED
    main(["submit", "--profile", slurm_profile, "--launcher", "srun", "--", sys.executable, "-c", RANK_CHECK])
    assert jobs.wait(_last_job().id, timeout_s=120, poll_s=0.5) == "FAILED"


def test_cancel_and_read_output_file(buckle_home, slurm_profile, capsys):
    main(["submit", "--profile", slurm_profile, "--", "bash", "-c", "echo started; sleep 300"])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=120, poll_s=0.5, until={"RUNNING"}) == "RUNNING"
    for _ in range(100):  # the batch script writes its first lines shortly after starting
        if "started" in jobs.logs(rec.id):
            break
        time.sleep(0.2)
    assert main(["cancel", rec.id]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{rec.id} CANCELLED")
    assert main(["logs", rec.id]) == 0
    out = capsys.readouterr().out
    assert "started" in out and f"job {rec.backend_id} on n1" in out


def test_env_exported_by_name_and_value_is_in_no_file(buckle_home, slurm_profile, canary, leaks):
    name, value = canary
    code = f"import os, hashlib; print('sha', hashlib.sha256(os.environ['{name}'].encode()).hexdigest())"
    main(["submit", "--profile", slurm_profile, "--env", name, "--", sys.executable, "-c", code])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=120, poll_s=0.5) == "COMPLETED"
    assert f"sha {hashlib.sha256(value.encode()).hexdigest()}" in jobs.logs(rec.id)
    script = Path(rec.info["script"]).read_text()
    assert f"#SBATCH --export=PATH,HOME,{name}" in script
    assert leaks(buckle_home, value) == []


def test_unreachable_controller_is_a_one_line_error(buckle_home, local_slurm, make_profile, capsys):
    from buckle.core.procs import free_port

    conf = buckle_home / "dead-slurm.conf"
    text = local_slurm.conf.read_text()
    port_line = next(ln for ln in text.splitlines() if ln.startswith("SlurmctldPort="))
    conf.write_text(text.replace(port_line, f"SlurmctldPort={free_port()}") + "MessageTimeout=2\n")
    make_profile("dead", {"backend": "slurm", "slurm": {"conf": str(conf)}})
    assert main(["submit", "--profile", "dead", "--", "buckle", "data", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("buckle submit: error: sbatch failed: ")


ALL_REDUCE = """
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(t)
print(f"rank {dist.get_rank()} of {dist.get_world_size()} sum {t.item():.0f}", flush=True)
dist.destroy_process_group()
"""


def test_torchrun_rendezvous_across_two_nodes(buckle_home, slurm_profile):
    main(["submit", "--profile", slurm_profile, "--nodes", "2", "--launcher", "torchrun",
          "--", sys.executable, "-c", ALL_REDUCE])
    rec = _last_job()
    state = jobs.wait(rec.id, timeout_s=240, poll_s=1)
    out = jobs.logs(rec.id)
    assert state == "COMPLETED", out[-3000:]
    # 1 + 2 summed over the two nodes' processes: the rendezvous really joined them
    assert "rank 0 of 2 sum 3" in out and "rank 1 of 2 sum 3" in out
