"""Ports and background processes: free ports, one tag scheme, start/list/kill by pid.

Every process buckle starts in the background (a dev cluster's daemons, a
private Ray, a test's driver) carries TAG_VAR=<tag> in its environment, where
the tag names its owner. Children inherit the environment, so the tag finds a
whole process tree later, and stopping kills exactly the owner's processes,
never anyone else's (no `ray stop`, no kill by name).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Mapping

TAG_VAR = "BUCKLE_PROC_TAG"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now.

    All are held open together while choosing, so none is handed out twice.
    """
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def new_tag(owner: str) -> str:
    """A fresh tag naming its owner, e.g. "ray-head-3f2a9c1b04de"."""
    return f"{owner}-{secrets.token_hex(6)}"


def tag_env(tag: str, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of `base` (default: this process's environment) with the tag and `extra` set."""
    return {**(os.environ if base is None else base), **extra, TAG_VAR: tag}


def adopt_tag(tag: str) -> str:
    """Tag this process (and so its future children) unless an owner above already did.

    Returns:
        The tag now in force: an outer one (e.g. a test's) wins, so it still finds everything.
    """
    return os.environ.setdefault(TAG_VAR, tag)


def spawn(cmd: list[str], tag: str, log: Path, env: Mapping[str, str] | None = None,
          **popen) -> subprocess.Popen:
    """Start `cmd` in the background, tagged, stdin closed, stdout and stderr appended to `log`.

    Args:
        cmd: the program and its arguments.
        tag: the owner's tag, set in the child's environment.
        log: file the output goes to.
        env: the child's environment before tagging (default: this process's).
        **popen: more subprocess.Popen arguments (cwd, start_new_session, ...).
    """
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=tag_env(tag, env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **popen)


def processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks) of every live process; zombies are not live."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            out[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return out


def tagged_pids(tag: str, title: bytes = b"") -> list[int]:
    """Pids of live processes carrying the tag, or below one that does, whose command line starts
    with `title`.

    Reads /proc/PID/environ, so only this user's processes are seen; this process is left out. A
    child counts by its parent too: one that rewrote its environ (setproctitle does; Ray's dashboard
    and runtime-env agents do) shows no tag any more, and would outlive its owner.
    """
    needle = f"{TAG_VAR}={tag}".encode()
    live = processes()
    found = set()
    for pid in live:
        try:
            if pid != os.getpid() and needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            continue
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in live.items():
        children.setdefault(parent, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child != os.getpid():
                found.add(child)
                todo.append(child)
    out = []
    for pid in sorted(found):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title):
                out.append(pid)
        except OSError:
            continue
    return out


def kill_tagged(tag: str, grace_s: float = 5.0) -> None:
    """Stop every process carrying the tag (or below one that does): SIGTERM, up to `grace_s` to
    exit, then SIGKILL.

    The pids are listed again after each wait, so children started meanwhile die too; the ones
    listed before stay on the list (a child whose parent died moves to init, out of the tree).
    grace_s=0 sends SIGKILL at once.
    """
    seen: dict[int, int] = {}  # pid -> start time: a pid reused meanwhile is another process

    def alive() -> list[int]:
        live = processes()
        seen.update({pid: live[pid][1] for pid in tagged_pids(tag) if pid in live})
        return [pid for pid, start in seen.items() if pid in live and live[pid][1] == start]

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if sig == signal.SIGTERM and grace_s <= 0:
            continue
        for pid in alive():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait_s
        while alive() and time.time() < deadline:
            time.sleep(0.2)
        if not alive():
            return


def pid_dir(prefix: str) -> Path:
    """A new temp dir named PREFIX-PID-XXXX: `sweep_dead_dirs` removes it if this process dies."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-"))


def sweep_dead_dirs(prefix: str) -> list[Path]:
    """Remove the `pid_dir(prefix)` dirs whose process is gone (a killed run leaves them behind).

    Returns:
        The dirs removed.
    """
    swept = []
    for path in Path(tempfile.gettempdir()).glob(f"{prefix}-*-*"):
        pid = path.name[len(prefix) + 1:].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept
