"""Run directories: every run writes manifest.json with config, versions, timings, counts.

Under a launcher (torchrun, deepspeed, srun, Ray Train) every rank runs the same
command on the same directory; only the global rank 0 probes it and writes the
manifest, and the other ranks wait until rank 0 has (see `RunDir`).
"""
from __future__ import annotations

import functools
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

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


WAIT_ENV = "BUCKLE_RANK_WAIT_S"  # seconds a rank > 0 waits for rank 0's manifest
WAIT_S = 600.0
_POLL_S = 0.2


def global_rank() -> int:
    """This process's global rank: RANK, as torchrun, deepspeed, Ray Train and buckle's srun set it; 0 alone."""
    return int(os.environ.get("RANK") or 0)


def check_writable(path: str | Path, what: str = "output directory") -> None:
    """Create the directory, or fail now with an error naming it: before any work is done.

    Only the global rank 0 writes the probe file (its name is unique per host and
    process, so even two probing processes never share one); other ranks only
    create the directory, which is safe to race.

    Raises:
        PermissionError: `WHAT 'PATH' is not writable: REASON`.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if global_rank() != 0:
            return
        probe = path / f".write-test-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"{what} '{path}' is not writable: {exc.strerror}") from None


def _dist_ready() -> bool:
    if "torch" not in sys.modules:  # never import torch just to ask
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank_zero_first(work: Callable[[], Any], marker: Path, what: str, timeout_s: float | None = None) -> None:
    """Run `work()` on the global rank 0 only; the other ranks return once it is done.

    With torch.distributed initialised the ranks meet in a broadcast that also
    carries rank 0's error; otherwise a rank > 0 waits until `marker` exists
    (rank 0 writes it), for at most `timeout_s` ($BUCKLE_RANK_WAIT_S, default 600).

    Raises:
        RuntimeError: on a rank > 0, rank 0 failed or `marker` did not appear in time.
    """
    rank = global_rank()
    if _dist_ready():
        import torch.distributed as dist

        box: list = [None]
        if rank == 0:
            try:
                work()
            except Exception as exc:
                box[0] = f"{type(exc).__name__}: {exc}"
                dist.broadcast_object_list(box, src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        if box[0]:
            raise RuntimeError(f"rank {rank}: rank 0 could not {what}: {box[0]}")
        return
    if rank == 0:
        work()
        return
    wait = float(os.environ.get(WAIT_ENV) or WAIT_S) if timeout_s is None else timeout_s
    deadline = time.monotonic() + wait
    while not marker.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"rank {rank}: rank 0 did not {what} within {wait:g} s (no {marker}): rank 0 "
                f"failed (see its error), or {marker.parent} is not storage every node shares "
                f"({WAIT_ENV} sets the wait)")
        time.sleep(_POLL_S)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """A run directory; `finish` records counts and timings in manifest.json.

    The manifest is written at start (status "running") so a crashed run
    leaves a trace, and rewritten at the end. Earlier manifests of the same
    directory (a resumed run) are kept under "previous_runs". Under several
    ranks only the global rank 0 writes it: the others wait at the start until
    rank 0 has checked the directory and written the manifest, then write nothing.
    """

    def __init__(self, path: str | Path, command: str, config: dict[str, Any]):
        self.path = Path(path)
        self.writer = global_rank() == 0
        self._t0 = time.time()
        self.data: dict[str, Any] = {
            "command": command, "argv": sys.argv, "config": config,
            "versions": package_versions(), "git_commit": git_commit(),
            "host": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "started": _now(), "ended": None,
            "status": "running", "counts": {}, "timings": {}, "previous_runs": [],
        }
        rank_zero_first(self._start, self.path / "manifest.json", f"write the manifest of {self.path}")

    def _start(self) -> None:
        check_writable(self.path)
        self.data["previous_runs"] = self._read_previous()
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
        """Write manifest.json atomically (on the global rank 0; other ranks write nothing)."""
        if not self.writer:
            return
        tmp = self.path / f"manifest.json.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(self.data, indent=2, default=str))
            tmp.replace(self.path / "manifest.json")
        finally:
            tmp.unlink(missing_ok=True)

    def finish(self, counts: dict[str, Any] | None = None, timings: dict[str, float] | None = None,
               status: str = "done", **extra: Any) -> None:
        """Record results and mark the run ended."""
        self.data["counts"].update(counts or {})
        self.data["timings"].update(timings or {})
        self.data["timings"]["wall_s"] = round(time.time() - self._t0, 3)
        self.data.update(extra)
        self.data["ended"], self.data["status"] = _now(), status
        self.write()
