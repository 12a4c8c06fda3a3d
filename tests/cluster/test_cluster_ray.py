"""Ray Jobs backend against a real local Ray head with token auth."""
import hashlib
import sys

import pytest

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobStore
from buckle.core.procs import free_port
from buckle.launcher.cli import main


@pytest.fixture
def ray_profile(ray_head, make_profile, monkeypatch):
    """make(name, any_command) -> a user profile pointing at the test head (token by env name)."""
    monkeypatch.setenv("BUCKLE_TEST_RAY_TOKEN", ray_head.token)

    def make(name: str = "ray-test", any_command: bool = False) -> str:
        return make_profile(name, {"backend": "ray", "allow_any_command": any_command,
                                   "ray": {"address": ray_head.dashboard_url,
                                           "token_env": "BUCKLE_TEST_RAY_TOKEN",
                                           "entrypoint_num_cpus": 0.5}})
    return make


def _last_job():
    return next(JobStore().all())


@pytest.mark.ray
def test_real_buckle_command_succeeds_and_logs_are_read(buckle_home, ray_profile, capsys):
    assert main(["submit", "--profile", ray_profile(), "--", "buckle", "data", "list"]) == 0
    rec = _last_job()
    assert rec.backend == "ray" and rec.backend_id == rec.id
    assert jobs.wait(rec.id, timeout_s=240, poll_s=1) == "SUCCEEDED"
    capsys.readouterr()
    assert main(["logs", rec.id, "--follow"]) == 0
    out = capsys.readouterr().out
    assert "advbench-test" in out and "harmful-pairs" in out
    assert out.rstrip().endswith("ended: SUCCEEDED")
    assert rec.info["token_env"] == "BUCKLE_TEST_RAY_TOKEN"  # the name is stored, never the token
    assert jobs.status(rec.id) == "SUCCEEDED"


@pytest.mark.ray
def test_cancel_long_job_is_stopped(buckle_home, ray_profile, capsys):
    main(["submit", "--profile", ray_profile("ray-any", any_command=True), "--", "sleep", "300"])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=180, poll_s=0.5, until={"RUNNING"}) == "RUNNING"
    assert main(["cancel", rec.id]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{rec.id} STOPPED")


@pytest.mark.ray
def test_env_reaches_job_by_name_and_value_is_in_no_file(buckle_home, ray_profile, canary, leaks, ray_head):
    name, value = canary
    code = f"import os, hashlib; print('sha', hashlib.sha256(os.environ['{name}'].encode()).hexdigest())"
    main(["submit", "--profile", ray_profile("ray-any", any_command=True), "--env", name,
          "--", sys.executable, "-c", code])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=240, poll_s=1) == "SUCCEEDED"
    assert f"sha {hashlib.sha256(value.encode()).hexdigest()}" in jobs.logs(rec.id)
    assert leaks(buckle_home, value) == []
    assert leaks(buckle_home, ray_head.token) == []  # the cluster token is a secret too


@pytest.mark.ray
def test_wrong_token_is_a_one_line_error(buckle_home, ray_profile, monkeypatch, capsys):
    name = ray_profile()
    monkeypatch.setenv("BUCKLE_TEST_RAY_TOKEN", "not-the-token-" + "0" * 32)
    assert main(["submit", "--profile", name, "--", "buckle", "data", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot reach the Ray cluster" in err


def test_unreachable_cluster_is_a_one_line_error(buckle_home, make_profile, monkeypatch, capsys):
    monkeypatch.setenv("BUCKLE_TEST_RAY_TOKEN", "t" * 64)
    make_profile("gone", {"backend": "ray", "ray": {"address": f"http://127.0.0.1:{free_port()}",
                                                     "token_env": "BUCKLE_TEST_RAY_TOKEN"}})
    assert main(["submit", "--profile", "gone", "--", "buckle", "data", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "buckle submit: error: cannot reach the Ray cluster at http://127.0.0.1:" in err


def test_remote_cluster_without_token_is_refused(buckle_home, make_profile, monkeypatch, capsys):
    monkeypatch.delenv("BUCKLE_NO_TOKEN_HERE", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(buckle_home / "no-such-token-file"))
    make_profile("remote", {"backend": "ray", "ray": {"address": "http://10.20.30.40:8265",
                                                       "token_env": "BUCKLE_NO_TOKEN_HERE"}})
    assert main(["submit", "--profile", "remote", "--", "buckle", "data", "list"]) == 2
    err = capsys.readouterr().err
    assert "refusing to submit to Ray at http://10.20.30.40:8265 without an auth token" in err
    assert len(err.strip().splitlines()) == 1
    assert list(JobStore().all()) == []


@pytest.mark.ray
def test_upload_working_dir_reaches_the_job(buckle_home, ray_head, make_profile, monkeypatch):
    monkeypatch.setenv("BUCKLE_TEST_RAY_TOKEN", ray_head.token)
    make_profile("ray-upload", {"backend": "ray", "allow_any_command": True,
                                "ray": {"address": ray_head.dashboard_url, "token_env": "BUCKLE_TEST_RAY_TOKEN",
                                        "working_dir": "upload", "entrypoint_num_cpus": 0.5}})
    src = buckle_home / "src"
    (src / "runs").mkdir(parents=True)
    (src / "marker.txt").write_text("uploaded-marker")
    (src / "runs" / "big.bin").write_text("excluded")
    code = "import os; print(open('marker.txt').read(), os.path.exists('runs/big.bin'))"
    main(["submit", "--profile", "ray-upload", "--workdir", str(src), "--", sys.executable, "-c", code])
    rec = _last_job()
    assert jobs.wait(rec.id, timeout_s=240, poll_s=1) == "SUCCEEDED"
    assert "uploaded-marker False" in jobs.logs(rec.id)  # the file came along, `runs` did not
