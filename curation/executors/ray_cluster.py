"""Where a Ray job runs: an existing cluster (connect only) or a private local one.

Without an address, `ray_session` starts a Ray instance for this process only:
token authentication on, dashboard bound to 127.0.0.1 on a free port, its own
temp dir, and it is stopped at the end (its processes also die with the
driver). With an address it only connects and never starts or stops anything.
`curation.ray_local_cluster.LocalCluster` starts several `ray start` nodes on this machine.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

TAG_VAR = "BUCKLE_RAY_CLUSTER"  # marks every process of a cluster buckle started


@dataclass
class RayInfo:
    """What the driver is connected to."""

    address: str
    started: bool
    dashboard_url: str | None = None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_token() -> None:
    """Turn token auth on for clusters this process starts, with a token if none is set.

    A user's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) is
    kept; otherwise a random one lives in this process's environment only. One
    token per process: Ray caches the token it loaded first.
    """
    os.environ["RAY_AUTH_MODE"] = "token"
    has_token = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                 or (Path.home() / ".ray" / "auth_token").is_file())
    if not has_token:
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if "ray._raylet" in sys.modules:  # Ray read its config at import: make it see token mode
        sys.modules["ray._raylet"].Config.initialize("")


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                log=None) -> Iterator[RayInfo]:
    """Connect the driver to Ray for the duration of the block.

    Args:
        address: an existing cluster ("HOST:PORT", or "auto"); None starts a
            private local instance (RAY_ADDRESS in the environment counts as given).
        num_cpus: CPUs of the local instance (default: all).
        log: callable for one-line notices (default: print to stderr).
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        ensure_token()  # before `import ray`, which reads the auth mode
    import ray

    if address:
        _connect(ray, address)
        try:
            yield RayInfo(address, started=False)
        finally:
            ray.shutdown()
        return
    _sweep_stale_dirs()
    tmp = tempfile.mkdtemp(prefix=f"buckle-ray-{os.getpid()}-")
    os.environ.setdefault(TAG_VAR, Path(tmp).name)
    port = free_port()
    try:
        ctx = ray.init(_temp_dir=tmp, include_dashboard=True, dashboard_host="127.0.0.1",
                       dashboard_port=port, num_cpus=num_cpus, log_to_driver=False,
                       logging_level="WARNING", configure_logging=True)
        url = f"http://{ctx.dashboard_url}" if ctx.dashboard_url else None
        say(f"ray: started a local instance (token auth on), dashboard {url}")
        yield RayInfo(ctx.address_info["gcs_address"], started=True, dashboard_url=url)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def _connect(ray, address: str) -> None:
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except Exception as exc:  # Ray raises ConnectionError, AuthenticationError, ...
        hint = ""
        if "auth" in str(exc).lower() or "token" in str(exc).lower():
            hint = " (set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        raise RuntimeError(f"cannot connect to Ray at '{address}': {exc}{hint}") from None


def _sweep_stale_dirs() -> None:
    """Remove temp dirs of earlier local instances whose driver was killed (pid in the name)."""
    for path in Path(tempfile.gettempdir()).glob("buckle-ray-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)
