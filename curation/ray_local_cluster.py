"""A Ray cluster of several `ray start` nodes on this machine (tests, trials of multi-node runs).

Each node gets its own CPUs and custom resources, free ports and a private temp
dir; every process carries a tag in its environment, so stopping kills exactly
this cluster's processes and never anyone else's (no global `ray stop`).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from buckle.curation.executors.ray_cluster import TAG_VAR, ensure_token, free_port


class LocalCluster:
    """Ray nodes started with `ray start` on this machine, each with its own CPUs and resources.

    Every process carries a unique tag in its environment, so `stop` kills exactly
    this cluster's processes (never `ray stop`, which would stop everyone's).
    """

    def __init__(self) -> None:
        ensure_token()
        self.root = Path(tempfile.mkdtemp(prefix="buckle-rc-"))
        self.tag = self.root.name
        self.env = {**os.environ, TAG_VAR: self.tag, "RAY_USAGE_STATS_ENABLED": "0"}
        self.address: str | None = None
        self.dashboard_port: int | None = None

    def start_head(self, num_cpus: int, resources: dict[str, float] | None = None) -> str:
        """Start the head node; returns its address HOST:PORT."""
        port, self.dashboard_port = free_port(), free_port()
        self._ray_start(["--head", f"--port={port}", "--dashboard-host=127.0.0.1",
                         f"--dashboard-port={self.dashboard_port}",
                         f"--ray-client-server-port={free_port()}"], num_cpus, resources)
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_node(self, num_cpus: int, resources: dict[str, float] | None = None) -> None:
        """Start one more node joining the head."""
        if not self.address:
            raise RuntimeError("start_head first")
        self._ray_start([f"--address={self.address}"], num_cpus, resources)

    def wait_for_nodes(self, count: int, timeout_s: float = 120.0) -> None:
        """Block until `count` nodes are alive (a joining node registers asynchronously)."""
        code = ("import sys, time, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                "deadline = time.time() + float(sys.argv[3]); "
                "alive = lambda: sum(1 for n in ray.nodes() if n['Alive']); "
                "[time.sleep(0.5) for _ in iter(lambda: alive() >= int(sys.argv[2]) or time.time() > deadline, True)]; "
                "sys.exit(0 if alive() >= int(sys.argv[2]) else 1)")
        proc = subprocess.run([sys.executable, "-c", code, str(self.address), str(count), str(timeout_s)],
                              env=self.env, capture_output=True, text=True, timeout=timeout_s + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"fewer than {count} Ray nodes came up: {proc.stderr[-2000:]}")

    def _ray_start(self, args: list[str], num_cpus: int, resources: dict | None) -> None:
        ray_bin = str(Path(sys.executable).with_name("ray"))
        cmd = [ray_bin, "start", *args, "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}",
               f"--resources={json.dumps(resources or {})}", f"--temp-dir={self.root}",
               f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
               "--disable-usage-stats"]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({proc.returncode}): {proc.stderr[-2000:]}")

    def pids(self) -> list[int]:
        """Pids of this cluster's processes (found by the tag in their environment)."""
        return tagged_pids(TAG_VAR, self.tag)

    def stop(self, grace_s: float = 5.0) -> None:
        """Kill this cluster's processes (TERM, then KILL) and remove its temp dir."""
        kill_pids(self.pids(), grace_s)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def tagged_pids(var: str, value: str) -> list[int]:
    """Pids of processes whose environment has var=value (this user's only)."""
    needle = f"{var}={value}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                out.append(int(entry.name))
        except OSError:
            continue
    return out


def kill_pids(pids: list[int], grace_s: float = 5.0) -> None:
    """SIGTERM the given pids, wait up to grace_s, then SIGKILL the rest."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_s
        while pids and time.time() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.2)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
