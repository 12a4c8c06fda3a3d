"""Job states that mean success, across backends, and running a job to its end state.

Ray Jobs and the local backend end a good job SUCCEEDED; Slurm ends it COMPLETED.
"""
from __future__ import annotations

from typing import Callable

from buckle.cluster import jobs
from buckle.cluster.jobdb import JobRecord
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec

SUCCESS = frozenset({"SUCCEEDED", "COMPLETED"})
WAIT_S = 30 * 24 * 3600  # a step or a training may run for weeks: waiting is not what bounds it


def succeeded(state: str) -> bool:
    """Whether a terminal job state means the job's command exited 0."""
    return state in SUCCESS


def run_job(spec: JobSpec, profile: Profile, poll_s: float = 2.0,
            on_submit: Callable[[JobRecord], None] | None = None) -> tuple[JobRecord, str, str]:
    """Submit a job, wait for its end, read its output: what every caller that waits on a job does.

    Args:
        spec: the job.
        profile: where it runs.
        poll_s: seconds between state polls.
        on_submit: called with the record once submitted (e.g. to say where to follow it).
    Returns:
        (record, final state, its output); a job only rendered (KubeRay without apply) returns
        state RENDERED at once and no output.
    """
    rec = jobs.submit(spec, profile)
    if rec.state == "RENDERED":
        return rec, rec.state, ""
    if on_submit is not None:
        on_submit(rec)
    state = jobs.wait(rec.id, timeout_s=WAIT_S, poll_s=poll_s)
    return rec, state, jobs.logs(rec.id)
