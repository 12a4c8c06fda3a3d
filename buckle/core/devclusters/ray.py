"""Ray on this machine: several `ray start` nodes (LocalCluster) or one private head (LocalRayHead).

Token auth is on (the token lives in environments, never in files unless
asked), the dashboard listens on 127.0.0.1, every port is a free one and the
temp dir is private. Nothing here imports ray: the
nodes are `ray` command-line processes.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from buckle.core import procs
from buckle.core.devclusters import cli_count, serve

# a subprocess that waits until N nodes are alive (a joining node registers asynchronously)
_WAIT_NODES = ("import sys, time, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
               "deadline = time.time() + float(sys.argv[3]); "
               "alive = lambda: sum(1 for n in ray.nodes() if n['Alive']); "
               "[time.sleep(0.5) for _ in iter(lambda: alive() >= int(sys.argv[2]) or time.time() > deadline, True)]; "
               "sys.exit(0 if alive() >= int(sys.argv[2]) else 1)")


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


class LocalCluster:
    """Ray nodes started with `ray start` on this machine, each with its own CPUs and resources.

    Attributes:
        token: the cluster's auth token (None when it is a user's token file's).
        env: the environment of its processes (token auth, the tag); drivers take RAY_AUTH_* from it.
        address: the head's GCS address HOST:PORT once started.
        dashboard_url: http://127.0.0.1:PORT, the Jobs API address, once started.
    """

    def __init__(self, token: str | None = None):
        """Make the temp dir and the environment; nothing starts yet.

        Args:
            token: the cluster's own token; None uses this process's (see ensure_token), so
                drivers in this process can connect too (Ray loads one token per process).
        """
        if token is None:
            ensure_token()
        self.token = token or os.environ.get("RAY_AUTH_TOKEN")
        self.root = Path(tempfile.mkdtemp(prefix="bk-ray-"))
        self.tag = self.root.name
        auth = {"RAY_AUTH_MODE": "token", **({"RAY_AUTH_TOKEN": token} if token else {})}
        self.env = procs.tag_env(self.tag, RAY_USAGE_STATS_ENABLED="0", **auth)
        self.address: str | None = None
        self.dashboard_url: str | None = None

    def start_head(self, num_cpus: int, resources: dict[str, float] | None = None,
                   timeout_s: float = 180.0) -> str:
        """Start the head node; returns its address HOST:PORT."""
        port, dash, client = procs.free_ports(3)
        self._ray_start(["--head", f"--port={port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                         f"--ray-client-server-port={client}"], num_cpus, resources, timeout_s)
        self.address, self.dashboard_url = f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}"
        return self.address

    def add_node(self, num_cpus: int, resources: dict[str, float] | None = None) -> None:
        """Start one more node joining the head."""
        if not self.address:
            raise RuntimeError("start_head first")
        self._ray_start([f"--address={self.address}"], num_cpus, resources, 180.0)

    def wait_for_nodes(self, count: int, timeout_s: float = 120.0) -> None:
        """Block until `count` nodes are alive."""
        proc = subprocess.run([sys.executable, "-c", _WAIT_NODES, str(self.address), str(count), str(timeout_s)],
                              env=self.env, capture_output=True, text=True, timeout=timeout_s + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"fewer than {count} Ray nodes came up: {proc.stderr[-2000:]}")

    def wait_for_dashboard(self, timeout_s: float = 180.0) -> None:
        """Block until the head's Jobs API answers an authenticated request."""
        deadline = time.time() + timeout_s
        req = urllib.request.Request(f"{self.dashboard_url}/api/version",
                                     headers={"Authorization": f"Bearer {self.token}"})
        while True:
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"Ray dashboard at {self.dashboard_url} did not answer in {timeout_s:.0f} s")
            time.sleep(0.5)

    def _ray_start(self, args: list[str], num_cpus: int, resources: dict | None, timeout_s: float) -> None:
        agent, metrics = procs.free_ports(2)
        cmd = [str(Path(sys.executable).with_name("ray")), "start", *args, "--node-ip-address=127.0.0.1",
               f"--num-cpus={num_cpus}", f"--resources={json.dumps(resources or {})}",
               f"--temp-dir={self.root}", f"--dashboard-agent-listen-port={agent}",
               f"--metrics-export-port={metrics}", "--disable-usage-stats"]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")

    def pids(self) -> list[int]:
        """Pids of this cluster's processes (found by its tag)."""
        return procs.tagged_pids(self.tag)

    def stop(self, grace_s: float = 5.0) -> None:
        """Kill this cluster's processes (SIGTERM, then SIGKILL) and remove its temp dir."""
        procs.kill_tagged(self.tag, grace_s)
        shutil.rmtree(self.root, ignore_errors=True)

    def write_token_file(self) -> Path:
        """The token in a file only this user can read (for RAY_AUTH_TOKEN_PATH)."""
        path = self.root / "auth_token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        return path

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalRayHead(LocalCluster):
    """A cluster whose Jobs API is up, a head and `workers` more nodes: `with LocalRayHead() as head:`
    or start()/stop()."""

    def __init__(self, num_cpus: int = 2, resources: dict[str, float] | None = None,
                 token: str | None = None, workers: int = 0):
        """Make the temp dir and the environment; nothing starts yet.

        Args:
            num_cpus: CPUs of each node.
            resources: custom resources of the head.
            token: the cluster's token; None makes one of its own (clients get it from a profile).
            workers: nodes joining the head, with `num_cpus` each.
        """
        super().__init__(token or secrets.token_hex(32))
        self.num_cpus, self.resources, self.workers = num_cpus, resources or {}, workers

    def start(self, timeout_s: float = 180.0) -> "LocalRayHead":
        """Start the head and its workers; wait until every node is alive and the Jobs API answers."""
        self.start_head(self.num_cpus, self.resources, timeout_s)
        for _ in range(self.workers):
            self.add_node(self.num_cpus)
        if self.workers:
            try:
                self.wait_for_nodes(1 + self.workers, timeout_s)
            except RuntimeError:
                self.stop()
                raise
        self.wait_for_dashboard(timeout_s)
        return self

    def __enter__(self) -> "LocalRayHead":
        return self.start()


def main() -> int:
    """`python -m buckle.cluster.ray_head [NUM_CPUS]`: run a private head until Ctrl-C."""
    head = LocalRayHead(num_cpus=cli_count(2)).start()
    token_file = head.write_token_file()
    return serve(head, f"Ray head up (token auth, dashboard on 127.0.0.1). In another shell:\n"
                       f"  export RAY_ADDRESS={head.dashboard_url} RAY_AUTH_TOKEN_PATH={token_file}\n"
                       f"  buckle submit --profile ray-local -- buckle data list\nCtrl-C stops it.")
