"""`python -m buckle.cluster.bench [REPEATS]`: seconds from submit to a finished job, per backend.

Runs `buckle data list` directly, then through the local backend, a private
Slurm (when installed) and a private Ray head, and prints medians side by side
with their ratio to the direct run. Uses a temp config/state dir; starts and
stops its own clusters.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["buckle", "data", "list"]


def _via(name: str) -> float:
    from buckle.cluster import jobs
    from buckle.cluster.profiles import load_profile
    from buckle.cluster.states import succeeded

    prof = load_profile(name)
    t0 = time.time()
    rec = jobs.submit(jobs.build_spec(prof, COMMAND), prof)
    state = jobs.wait(rec.id, timeout_s=300, poll_s=0.1)
    if not succeeded(state):
        raise RuntimeError(f"{name}: job ended {state}")
    return time.time() - t0


def main(repeats: int = 3) -> dict[str, float]:
    """Median seconds per way of running; prints a table."""
    home = Path(tempfile.mkdtemp(prefix="bk-bench-"))
    (home / "profiles").mkdir()
    os.environ.update(BUCKLE_CONFIG_DIR=str(home), BUCKLE_STATE_DIR=str(home / "state"))
    try:
        res = _measure(home, repeats)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    base = statistics.median(res["direct"])
    out = {k: statistics.median(v) for k, v in res.items()}
    print(f"{'way':24s} {'median s':>9s} {'x direct':>9s}")
    for key, secs in out.items():
        print(f"{key:24s} {secs:9.2f} {secs / base:9.2f}")
    return out


def _measure(home: Path, repeats: int) -> dict[str, list[float]]:
    from buckle.core.devclusters.ray import LocalRayHead
    from buckle.core.devclusters.slurm import LocalSlurm, slurm_available

    exe = str(Path(sys.executable).with_name("buckle"))
    res: dict[str, list[float]] = {"direct": [], "local": []}
    for _ in range(repeats):
        t0 = time.time()
        subprocess.run([exe, *COMMAND[1:]], capture_output=True, check=True)
        res["direct"].append(time.time() - t0)
        res["local"].append(_via("local"))
    if slurm_available() is None:
        with LocalSlurm(nodes=1) as slurm:
            (home / "profiles" / "bench-slurm.yaml").write_text(f"backend: slurm\nslurm: {{conf: '{slurm.conf}'}}\n")
            res["slurm"] = [_via("bench-slurm") for _ in range(repeats)]
    t0 = time.time()
    with LocalRayHead(num_cpus=2) as head:
        res["ray head start (once)"] = [time.time() - t0]
        os.environ["BUCKLE_BENCH_RAY_TOKEN"] = head.token
        (home / "profiles" / "bench-ray.yaml").write_text(
            f"backend: ray\nray: {{address: '{head.dashboard_url}', token_env: BUCKLE_BENCH_RAY_TOKEN}}\n")
        res["ray"] = [_via("bench-ray") for _ in range(repeats)]
    return res


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
