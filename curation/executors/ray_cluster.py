"""Where a Ray job runs: an existing cluster (connect only) or a private local one.

Without an address, `ray_session` starts a Ray instance for this process only:
token authentication on, dashboard bound to 127.0.0.1 on a free port, its own
temp dir, and it is stopped at the end (its processes also die with the
driver). With an address it only connects and never starts or stops anything.
`buckle.core.devclusters.ray.LocalCluster` starts several `ray start` nodes on this machine.
"""
from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from buckle.core import procs
from buckle.core.devclusters.ray import ensure_token

DIR_PREFIX = "buckle-ray"  # temp dirs are DIR_PREFIX-PID-XXXX: a rerun sweeps those of killed drivers


@dataclass
class RayInfo:
    """What the driver is connected to."""

    address: str
    started: bool
    dashboard_url: str | None = None


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
    procs.sweep_dead_dirs(DIR_PREFIX)
    tmp = procs.pid_dir(DIR_PREFIX)
    procs.adopt_tag(tmp.name)  # the Ray processes inherit it (an outer owner's tag wins)
    port = procs.free_port()
    try:
        ctx = ray.init(_temp_dir=str(tmp), include_dashboard=True, dashboard_host="127.0.0.1",
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
