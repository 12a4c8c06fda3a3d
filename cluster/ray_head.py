"""A private Ray head on this machine: token auth on, dashboard on 127.0.0.1, free ports.

For trying `buckle submit` against Ray and for tests. Every process it starts
carries a unique tag in its environment, so `stop` kills exactly those pids
(never `ray stop`, which would stop every Ray of this user).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TAG_VAR = "BUCKLE_RAY_HEAD"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRayHead:
    """`ray start --head` in a private temp dir; use as a context manager or start()/stop().

    Attributes:
        token: the cluster's auth token (keep it in the environment, never in files).
        dashboard_url: http://127.0.0.1:PORT, the Jobs API address.
    """

    def __init__(self, num_cpus: int = 2, resources: dict[str, float] | None = None,
                 token: str | None = None):
        self.num_cpus, self.resources = num_cpus, resources or {}
        self.token = token or secrets.token_hex(32)
        self.root = Path(tempfile.mkdtemp(prefix="bk-ray-"))
        self.tag = self.root.name
        self.dashboard_url: str | None = None
        self.gcs_address: str | None = None

    def env(self) -> dict[str, str]:
        """The environment of the cluster's processes: token auth, the tag."""
        return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                TAG_VAR: self.tag, "RAY_USAGE_STATS_ENABLED": "0"}

    def start(self, timeout_s: float = 180.0) -> "LocalRayHead":
        """Start the head and wait until its Jobs API answers."""
        port, dash = free_port(), free_port()
        cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}",
               "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
               f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
               f"--metrics-export-port={free_port()}", f"--num-cpus={self.num_cpus}",
               f"--resources={json.dumps(self.resources)}", f"--temp-dir={self.root}",
               "--disable-usage-stats"]
        proc = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
        self.gcs_address, self.dashboard_url = f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}"
        self._wait_dashboard(timeout_s)
        return self

    def _wait_dashboard(self, timeout_s: float) -> None:
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

    def pids(self) -> list[int]:
        """Pids of this head's processes (found by the tag in their environment)."""
        needle = f"{TAG_VAR}={self.tag}".encode()
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if needle in (entry / "environ").read_bytes().split(b"\0"):
                        out.append(int(entry.name))
                except OSError:
                    continue
        return out

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM this head's processes, SIGKILL what is left, remove the temp dir."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + grace_s
            while pids and time.time() < deadline:
                time.sleep(0.2)
                pids = self.pids()
            if not pids:
                break
        shutil.rmtree(self.root, ignore_errors=True)

    def write_token_file(self) -> Path:
        """The token in a file only this user can read (for RAY_AUTH_TOKEN_PATH)."""
        path = self.root / "auth_token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        return path

    def __enter__(self) -> "LocalRayHead":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """`python -m buckle.cluster.ray_head [NUM_CPUS]`: run a private head until Ctrl-C."""
    head = LocalRayHead(num_cpus=int(sys.argv[1]) if len(sys.argv) > 1 else 2).start()
    try:
        token_file = head.write_token_file()
        print(f"Ray head up (token auth, dashboard on 127.0.0.1). In another shell:\n"
              f"  export RAY_ADDRESS={head.dashboard_url} RAY_AUTH_TOKEN_PATH={token_file}\n"
              f"  buckle submit --profile ray-local -- buckle data list\nCtrl-C stops it.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        head.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
