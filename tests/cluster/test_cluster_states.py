"""Success states in one table, and a job run to its end with its output."""
import sys
import time

import pytest

from buckle.cluster import jobs
from buckle.cluster.profiles import load_profile
from buckle.cluster.states import run_job, succeeded


def test_success_is_succeeded_or_completed_only():
    assert succeeded("SUCCEEDED") and succeeded("COMPLETED")
    assert not any(succeeded(s) for s in ("FAILED", "STOPPED", "CANCELLED", "TIMEOUT", "RENDERED", "RUNNING"))


def test_run_job_waits_and_returns_the_output(buckle_home, make_profile):
    make_profile("any", {"backend": "local", "allow_any_command": True})
    prof = load_profile("any")
    seen = []
    ok = jobs.build_spec(prof, [sys.executable, "-c", "print('hello from the job')"])
    rec, state, output = run_job(ok, prof, poll_s=0.2, on_submit=seen.append)
    assert succeeded(state) and "hello from the job" in output and [r.id for r in seen] == [rec.id]
    bad = jobs.build_spec(prof, [sys.executable, "-c", "raise SystemExit(3)"])
    assert not succeeded(run_job(bad, prof, poll_s=0.2)[1])


def test_a_pipeline_step_runs_as_a_job_and_its_log_holds_the_output(buckle_home):
    from buckle.launcher.pipeline.runner import run_on_profile

    log = buckle_home / "log.txt"
    run_on_profile("local", ["data", "list"], log, poll_s=0.2)
    text = log.read_text()
    assert text.startswith("$ buckle data list  [job bk-") and "on local]" in text and "advbench-test" in text
    with pytest.raises(RuntimeError, match=r"step `buckle data` ended FAILED as job bk-\S+ on profile 'local'"):
        run_on_profile("local", ["data", "pull", "no-such-set"], buckle_home / "bad.txt", poll_s=0.2)


def test_a_short_job_is_seen_ending_soon_under_a_long_poll_interval(buckle_home, make_profile):
    make_profile("any", {"backend": "local", "allow_any_command": True})
    prof = load_profile("any")
    spec = jobs.build_spec(prof, [sys.executable, "-c", "import time; time.sleep(1.5)"])
    t0 = time.time()
    rec, state, _ = run_job(spec, prof, poll_s=30)  # the pipeline's steps poll every 5 s, most end in seconds
    assert succeeded(state) and time.time() - t0 < 10  # polled every poll_s from the start: >= 30 s
