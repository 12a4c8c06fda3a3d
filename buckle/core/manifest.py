"""Run directories: every run writes manifest.json with config, versions, timings, counts."""
from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("buckle", "torch", "transformers", "peft", "deepspeed", "ray", "datasets",
            "pyarrow", "accelerate", "pydantic")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a run's results."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def git_commit() -> str | None:
    """The commit of the source tree buckle runs from, if it is a git checkout (asked once)."""
    root = Path(__file__).resolve().parent
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_writable(path: str | Path, what: str = "output directory") -> None:
    """Create the directory, or fail now with an error naming it: before any work is done.

    Raises:
        PermissionError: `WHAT 'PATH' is not writable: REASON`.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"{what} '{path}' is not writable: {exc.strerror}") from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """A run directory; `finish` records counts and timings in manifest.json.

    The manifest is written at start (status "running") so a crashed run
    leaves a trace, and rewritten at the end. Earlier manifests of the same
    directory (a resumed run) are kept under "previous_runs".
    """

    def __init__(self, path: str | Path, command: str, config: dict[str, Any]):
        self.path = Path(path)
        check_writable(self.path)
        self._t0 = time.time()
        previous = self._read_previous()
        self.data: dict[str, Any] = {
            "command": command, "argv": sys.argv, "config": config,
            "versions": package_versions(), "git_commit": git_commit(),
            "host": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "started": _now(), "ended": None,
            "status": "running", "counts": {}, "timings": {}, "previous_runs": previous,
        }
        self.write()

    def _read_previous(self) -> list[dict[str, Any]]:
        path = self.path / "manifest.json"
        if not path.exists():
            return []
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        prior = old.pop("previous_runs", [])
        keep = {k: old.get(k) for k in ("started", "ended", "status", "counts", "timings")}
        return prior + [keep]

    def write(self) -> None:
        """Write manifest.json atomically."""
        tmp = self.path / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path / "manifest.json")

    def finish(self, counts: dict[str, Any] | None = None, timings: dict[str, float] | None = None,
               status: str = "done", **extra: Any) -> None:
        """Record results and mark the run ended."""
        self.data["counts"].update(counts or {})
        self.data["timings"].update(timings or {})
        self.data["timings"]["wall_s"] = round(time.time() - self._t0, 3)
        self.data.update(extra)
        self.data["ended"], self.data["status"] = _now(), status
        self.write()
