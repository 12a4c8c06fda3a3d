"""Runs a local job's command and writes its outcome (`python -m buckle.cluster.runner RESULT -- CMD...`).

The runner leads its own session so `cancel` can signal the whole process group;
on SIGTERM it marks the job stopped, waits for the command and records that.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run argv after `--`, write {"returncode", "stopped", "ended"} to the result file."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m buckle.cluster.runner RESULT_JSON -- COMMAND...", file=sys.stderr)
        return 2
    result, command = Path(argv[0]), argv[2:]
    stopped = False
    try:
        proc = subprocess.Popen(command)
    except OSError as exc:
        print(f"buckle runner: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
        _write(result, 127, False)
        return 127

    def on_term(signum, frame):
        nonlocal stopped
        stopped = True
        proc.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = proc.wait()
    _write(result, code, stopped)
    return code


def _write(path: Path, code: int, stopped: bool) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"returncode": code, "stopped": stopped, "ended": time.time()}))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
