"""Local backend end to end through the CLI, plus the CLI's bad-input errors."""
import hashlib
import json
import sys
import time

import pytest

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobStore
from buckle.launcher.cli import main


def _last_job():
    return next(JobStore().all())


def _any_profile(make_profile):
    return make_profile("any", {"backend": "local", "allow_any_command": True})


def test_submit_real_buckle_command_and_read_logs(buckle_home, capsys):
    assert main(["submit", "--profile", "local", "--", "buckle", "data", "list"]) == 0
    rec = _last_job()
    assert capsys.readouterr().out.startswith(f"{rec.id} RUNNING (local ")
    assert jobs.wait(rec.id, timeout_s=120, poll_s=0.3) == "SUCCEEDED"
    assert main(["logs", rec.id]) == 0
    out = capsys.readouterr().out
    assert "advbench-test" in out and "harmful-pairs" in out
    assert main(["status", rec.id]) == 0
    assert capsys.readouterr().out.split()[:2] == [rec.id, "SUCCEEDED"]
    manifest = json.loads((buckle_home / "state" / rec.id / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["config"]["spec"]["command"][:2] == ["buckle", "data"]


def test_failed_command_is_failed(buckle_home):
    main(["submit", "--profile", "local", "--", "buckle", "data", "pull", "no-such-set"])
    assert jobs.wait(_last_job().id, timeout_s=120, poll_s=0.3) == "FAILED"


def test_cancel_long_job_is_stopped(buckle_home, make_profile, capsys):
    main(["submit", "--profile", _any_profile(make_profile), "--", "sleep", "300"])
    rec = _last_job()
    assert jobs.status(rec.id) == "RUNNING"
    assert main(["cancel", rec.id]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{rec.id} STOPPED")
    assert main(["jobs", "--cached"]) == 0
    assert f"{rec.id}  STOPPED" in capsys.readouterr().out


def test_env_passes_by_name_and_value_is_in_no_file(buckle_home, make_profile, canary, leaks):
    name, value = canary
    code = f"import os, hashlib; print('sha', hashlib.sha256(os.environ['{name}'].encode()).hexdigest())"
    main(["submit", "--profile", _any_profile(make_profile), "--env", name, "--", sys.executable, "-c", code])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=60, poll_s=0.3) == "SUCCEEDED"
    assert f"sha {hashlib.sha256(value.encode()).hexdigest()}" in jobs.logs(rec.id)
    assert rec.spec["env"] == [name]
    assert leaks(buckle_home, value) == []


@pytest.mark.parametrize("argv,message", [
    (["submit", "--profile", "local", "buckle", "data", "list"], "missing `--` before the job's command"),
    (["submit", "--profile", "local"], "missing `--` and the job's command"),
    (["submit", "--profile", "nope", "--", "buckle", "data", "list"], "profile 'nope' not found"),
    (["submit", "--profile", "local", "--", "rm", "-rf", "x"], "runs only buckle commands, got 'rm'"),
    (["submit", "--profile", "local", "--", "buckle", "frobnicate"], "'buckle frobnicate' is not a buckle subcommand"),
    (["submit", "--profile", "local", "--env", "K=v", "--", "buckle", "data", "list"], "by name only"),
    (["submit", "--profile", "local", "--env", "BUCKLE_UNSET_VAR_X", "--", "buckle", "data", "list"],
     "env: BUCKLE_UNSET_VAR_X not set in your environment"),
    (["status", "bk-00000000"], "no job 'bk-00000000'"),
    (["logs", "bk-00000000"], "no job 'bk-00000000'"),
    (["cancel", "bk-00000000"], "no job 'bk-00000000'"),
])
def test_bad_input_is_one_line_and_nonzero(buckle_home, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"buckle {argv[0]}: error: ")
    assert message in err


def test_follow_prints_output_until_the_end(buckle_home, make_profile, capsys):
    code = "import time\nfor i in range(3): print('tick', i, flush=True); time.sleep(0.5)"
    main(["submit", "--profile", _any_profile(make_profile), "--", sys.executable, "-c", code])
    rec = _last_job()
    capsys.readouterr()
    t0 = time.time()
    assert main(["logs", rec.id, "--follow", "--poll", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "tick 0\ntick 1\ntick 2\n" in out and out.rstrip().endswith("ended: SUCCEEDED")
    assert time.time() - t0 < 60
