"""Ray backend: the Ray Jobs API (JobSubmissionClient) against a cluster's dashboard.

The token is sent as a bearer header and read, at each call, from the env var
named in the profile (or RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token); only that
name is stored. It goes only over https or to a loopback address, unless the
profile's ray section says `insecure: true`. Env var values reach the job through the runtime env and
nowhere else. `buckle train` runs as a Ray Train job whose driver is the
entrypoint (see `cluster.command.ray_entry_argv`); `nodes` > 1 is allowed.
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from urllib.parse import urlparse

from buckle.cluster.command import is_ray_train, ray_entry_argv
from buckle.cluster.profiles import Profile
from buckle.cluster.spec import JobSpec
from buckle.core.urls import is_loopback

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def resolve_address(profile: Profile) -> str:
    """The dashboard URL: the profile's, else $RAY_ADDRESS, else 127.0.0.1:8265."""
    address = profile.ray.address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    return address if "://" in address else f"http://{address}"


def read_token(token_env: str) -> str | None:
    """The auth token: $<token_env>, else the file in RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token."""
    if os.environ.get(token_env):
        return os.environ[token_env].strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _entrypoint(spec: JobSpec, profile: Profile) -> str:
    argv = shlex.join(ray_entry_argv(spec, profile))
    if profile.ray.working_dir == "shared":  # same filesystem: run where the user submitted
        return f"cd {shlex.quote(str(Path(spec.workdir).resolve()))} && {argv}"
    return argv


def _runtime_env(spec: JobSpec, profile: Profile, with_values: bool) -> dict:
    env = {n: (os.environ[n] if with_values else "<from submitter env>") for n in spec.env}
    runtime: dict = {"env_vars": env} if env else {}
    if profile.ray.working_dir == "upload":
        runtime["working_dir"] = str(Path(spec.workdir).resolve())
        runtime["excludes"] = list(profile.ray.excludes)
    return runtime


def _resources(spec: JobSpec, profile: Profile) -> dict:
    out: dict = {"entrypoint_num_cpus": profile.ray.entrypoint_num_cpus}
    if spec.gpus_per_node and not is_ray_train(spec, profile):  # Ray Train's workers take the GPUs
        out["entrypoint_num_gpus"] = spec.gpus_per_node
    if profile.ray.entrypoint_resources:
        out["entrypoint_resources"] = dict(profile.ray.entrypoint_resources)
    return out


def render(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> str:
    """The submission as JSON (env var names only)."""
    sub = {"address": resolve_address(profile), "submission_id": job_id,
           "entrypoint": _entrypoint(spec, profile),
           "runtime_env": _runtime_env(spec, profile, with_values=False), **_resources(spec, profile)}
    return json.dumps(sub, indent=2) + "\n"


def check_secure(address: str, token: str | None, insecure: bool = False) -> None:
    """Refuse a non-loopback cluster without a token, or a token over plain http to one, saying why.

    Raises:
        PermissionError: no token for a remote cluster; or a token to `http://` on another host
            while the profile does not say `insecure: true`.
    """
    if is_loopback(address):
        return
    if not token:
        raise PermissionError(
            f"refusing to submit to Ray at {address} without an auth token: a Ray dashboard without "
            "token auth runs any code sent to it, so the cluster must have token auth on "
            "(RAY_AUTH_MODE=token) and you its token (in the profile's token_env variable, "
            "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)")
    if urlparse(address).scheme != "https" and not insecure:
        raise PermissionError(
            f"refusing to send the Ray auth token over plain http to {urlparse(address).hostname}: anyone "
            "on the path could read it and run code on the cluster; use an https address (a TLS proxy "
            "in front of the dashboard), an SSH tunnel to 127.0.0.1, or set `insecure: true` in the "
            "profile's ray section for a network you trust")


def client(address: str, token_env: str, insecure: bool = False):
    """A JobSubmissionClient for the cluster; an unreachable cluster is a one-line RuntimeError."""
    from ray.job_submission import JobSubmissionClient

    token = read_token(token_env)
    check_secure(address, token, insecure)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(address, headers=headers)
    except Exception as exc:  # ConnectionError, auth errors, ...; keep only the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(f"cannot reach the Ray cluster at {address}: {first}") from None


def _client_of(rec):
    info = rec.info
    return client(info["address"], info["token_env"], info.get("insecure", False))


def submit(spec: JobSpec, profile: Profile, job_id: str, job_dir: Path) -> tuple[str, dict, str]:
    """Submit through the Jobs API; the submission id is the buckle job id."""
    address = resolve_address(profile)
    c = client(address, profile.ray.token_env, profile.ray.insecure)
    try:
        sid = c.submit_job(entrypoint=_entrypoint(spec, profile), submission_id=job_id,
                           runtime_env=_runtime_env(spec, profile, with_values=True),
                           metadata={"buckle_job": job_id, "name": spec.name}, **_resources(spec, profile))
    except Exception as exc:
        raise RuntimeError(f"Ray refused the job: {_first_line(exc)}") from None
    info = {"address": address, "token_env": profile.ray.token_env, "insecure": profile.ray.insecure}
    return sid, info, "PENDING"


def status(rec) -> str:
    """The Jobs API status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    c = _client_of(rec)
    try:
        return str(c.get_job_status(rec.backend_id).value)
    except Exception as exc:
        raise RuntimeError(f"Ray job {rec.backend_id}: {_first_line(exc)}") from None


def logs(rec) -> str:
    """The job's driver log."""
    c = _client_of(rec)
    try:
        return c.get_job_logs(rec.backend_id)
    except Exception as exc:
        raise RuntimeError(f"Ray job {rec.backend_id}: {_first_line(exc)}") from None


def cancel(rec) -> None:
    """Ask Ray to stop the job (it becomes STOPPED)."""
    c = _client_of(rec)
    try:
        c.stop_job(rec.backend_id)
    except Exception as exc:
        raise RuntimeError(f"Ray job {rec.backend_id}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
