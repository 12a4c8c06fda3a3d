"""Throwaway clusters on this machine, for trials and tests: Ray nodes, a Ray head, a Slurm.

Each lives in its own temp dir on free ports, and its processes carry one tag
(`buckle.core.procs`), so stopping kills exactly its own pids.
"""
from __future__ import annotations

import signal
import sys
import time


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def serve(cluster, banner: str) -> int:
    """Print `banner`, keep the started `cluster` up until Ctrl-C or SIGTERM, then stop it.

    Returns:
        0, the exit status of the command-line entry points.
    """
    try:
        print(banner, flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


def cli_count(default: int) -> int:
    """The optional count argument of the entry points (CPUs, nodes)."""
    return int(sys.argv[1]) if len(sys.argv) > 1 else default
