"""Submit, watch and cancel jobs: profiles + JobSpec -> backend, with SQLite records.

This is the Python API behind `buckle submit/jobs/status/logs/cancel`.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from buckle.cluster.backends import get_backend
from buckle.cluster.command import check_command
from buckle.cluster.jobdb import JobRecord, JobStore
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec

FIRST_POLL_S = 0.25  # wait()'s shortest pause between two state polls


def build_spec(profile: Profile, command: list[str], **overrides: Any) -> JobSpec:
    """A JobSpec from the profile's defaults with the given (non-None) overrides on top.

    `env` names from the profile and the overrides are merged, in order.
    """
    check_command(command, profile)
    values = profile.defaults.model_dump()
    extra_env = overrides.pop("env", None) or []
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["env"] = list(dict.fromkeys([*values["env"], *extra_env]))
    values.setdefault("workdir", os.getcwd())
    return JobSpec(command=list(command), **values)


def render(spec: JobSpec, profile: Profile, job_id: str = "bk-dryrun0", job_dir: Path | None = None) -> str:
    """What submitting would send (sbatch script, Ray submission, RayJob manifest)."""
    backend = get_backend(profile.backend)
    return backend.render(spec, profile, job_id, job_dir or Path("<job dir>"))


def submit(spec: JobSpec, profile: Profile, store: JobStore | None = None,
           job_id: str | None = None) -> JobRecord:
    """Submit and record the job; returns its record (state = what the backend said)."""
    missing = [n for n in spec.env if n not in os.environ]
    if missing and profile.backend != "kuberay":  # KubeRay pods read them from a Secret instead
        raise ValueError(f"env: {', '.join(missing)} not set in your environment")
    store = store or JobStore()
    backend = get_backend(profile.backend)
    job_id = job_id or store.new_id()
    job_dir = store.job_dir(job_id)
    job_dir.mkdir(parents=True, exist_ok=True)
    try:
        backend_id, info, state = backend.submit(spec, profile, job_id, job_dir)
    except (ValueError, RuntimeError, OSError) as exc:  # messages must not carry env values
        raise type(exc)(redact(str(exc), spec.env)) from None
    rec = JobRecord(id=job_id, profile=profile.name, backend=profile.backend, command=list(spec.command),
                    spec=spec.to_dict(), job_dir=str(job_dir), backend_id=backend_id, name=spec.name,
                    info=info, state=state, checked=time.time())
    store.add(rec)
    return rec


def status(job_id: str, store: JobStore | None = None) -> str:
    """The state the backend reports now (recorded in the job table)."""
    store = store or JobStore()
    rec = store.get(job_id)
    state = get_backend(rec.backend).status(rec)
    store.set_state(rec.id, state)
    return state


def is_terminal(rec: JobRecord, state: str) -> bool:
    """True when the job's state can no longer change."""
    return state in get_backend(rec.backend).TERMINAL


def logs(job_id: str, store: JobStore | None = None) -> str:
    """The job's output so far, with the values of its --env variables masked."""
    store = store or JobStore()
    rec = store.get(job_id)
    return redact(get_backend(rec.backend).logs(rec), rec.spec.get("env", []))


def wait(job_id: str, timeout_s: float = 600.0, poll_s: float = 1.0,
         store: JobStore | None = None, until: set[str] | None = None) -> str:
    """Poll the backend until the job reaches a terminal state (or one of `until`); returns it.

    A pause between two polls is a quarter of the time waited so far, at least FIRST_POLL_S and at
    most `poll_s`: a job of seconds (most pipeline steps) is seen ending soon after it does, a long
    one is asked once per `poll_s`.
    """
    store = store or JobStore()
    rec = store.get(job_id)
    start = time.time()
    deadline = start + timeout_s
    while True:
        state = status(rec.id, store)
        if is_terminal(rec, state) or state in (until or ()):
            return state
        if time.time() > deadline:
            raise TimeoutError(f"job {rec.id} still {state} after {timeout_s:.0f} s")
        time.sleep(min(poll_s, max(FIRST_POLL_S, (time.time() - start) / 4)))


def follow(job_id: str, out: TextIO | None = None, poll_s: float = 1.0,
           store: JobStore | None = None) -> str:
    """Print the job's output as it grows until the job ends; returns the final state."""
    out = out or sys.stdout
    store = store or JobStore()
    rec = store.get(job_id)
    shown = 0
    while True:
        state = status(rec.id, store)  # state first, so the last read sees all output
        text = logs(rec.id, store)
        out.write(text[shown:])
        out.flush()
        shown = max(shown, len(text))
        if is_terminal(rec, state):
            return state
        time.sleep(poll_s)


def cancel(job_id: str, store: JobStore | None = None, wait_s: float = 15.0, poll_s: float = 0.5) -> str:
    """Cancel the job; returns the state the backend reports once it ends (or after wait_s)."""
    store = store or JobStore()
    rec = store.get(job_id)
    get_backend(rec.backend).cancel(rec)
    deadline = time.time() + wait_s
    while True:
        try:
            state = status(rec.id, store)
        except RuntimeError as exc:
            return f"cancel sent ({exc})"
        if is_terminal(rec, state) or time.time() >= deadline:
            return state
        time.sleep(poll_s)


def redact(text: str, env_names: list[str]) -> str:
    """Mask the current values of the named env vars (secrets a job might echo)."""
    for name in env_names:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    return text
