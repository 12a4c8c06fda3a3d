"""Scale of `buckle score` on Ray: rows/s and peak memory vs corpus size, workers, executor.

Runs the real command (`python -m buckle.launcher.cli score ...`) in subprocesses over
synthetic rows with a tiny random model, and prints side-by-side ratios:

- 10k vs 100k rows (Ray, 1 worker): rows/s, and peak memory of the driver and
  the workers; streaming means the 100k peak stays within 1.2x of the 10k peak.
- 1 vs 2 workers on the same 100k rows: speed-up.
- local executor vs Ray with one worker on the same 100k rows: Ray's overhead
  (target < 15%), end to end (with Ray's start and the actor's model load) and
  steady (rows/s once rows flow).

Each run uses one torch thread per worker (OMP_NUM_THREADS=1), so the executors
compare the same compute. Usage:

    python bench/curation_scale.py [--sizes 10000,100000] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("water boil egg minutes sky blue light air study break sleep plant morning leaves bread "
         "oven warm walk park tea cup rain coat map bus train ticket clock desk lamp").split()


def make_input(path: Path, rows: int, seed: int = 0) -> None:
    """Synthetic instruction/response rows (ids r0000000...)."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": f"r{i:07d}", "instruction": " ".join(rnd.choices(WORDS, k=8)),
                                 "response": " ".join(rnd.choices(WORDS, k=rnd.randint(10, 40)))}) + "\n")


def run_score(inp: Path, out: Path, model: Path, executor: str, workers: int, shard: int) -> dict:
    """One `buckle score` run; returns its manifest counts."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "buckle.launcher.cli", "score", "--input", str(inp), "--output", str(out),
           "--model", str(model), "--executor", executor, "--num-workers", str(workers),
           "--shard-size", str(shard)]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    counts["command_s"] = round(time.time() - t0, 1)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="small,large row counts")
    parser.add_argument("--shard-size", type=int, default=2048)
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    small, large = (int(x) for x in args.sizes.split(","))
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="buckle-bench-") as tmp:
        base = Path(tmp)
        model = build_tiny_model(base / "model")
        for n in (small, large):
            make_input(base / f"in-{n}.jsonl", n)
        plan = [("ray1", small, "ray", 1), ("ray1", large, "ray", 1),
                ("ray2", large, "ray", 2), ("local", large, "local", 1)]
        res = {}
        for name, n, executor, workers in plan:
            print(f"running {name} on {n} rows ...", file=sys.stderr, flush=True)
            res[(name, n)] = run_score(base / f"in-{n}.jsonl", base / f"out-{name}-{n}", model,
                                       executor, workers, args.shard_size)
    report(res, small, large)
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}@{k[1]}": v for k, v in res.items()}, indent=2))
    return 0


def report(res: dict, small: int, large: int) -> None:
    """Print the table and the ratios."""
    print(f"{'run':<12}{'rows':>8}{'wall s':>9}{'rows/s':>9}{'steady':>9}{'driver MB':>11}{'worker MB':>11}")
    for (name, n), c in res.items():
        worker = c.get("worker_peak_rss_mb") or c["driver_peak_rss_mb"]
        print(f"{name:<12}{n:>8}{c['wall_s']:>9.1f}{c['rows_per_s']:>9.1f}{c['steady_rows_per_s']:>9.1f}"
              f"{c['driver_peak_rss_mb']:>11.1f}{worker:>11.1f}")
    s, l1 = res[("ray1", small)], res[("ray1", large)]
    l2, loc = res[("ray2", large)], res[("local", large)]
    print(f"peak memory {large} vs {small} rows: driver {l1['driver_peak_rss_mb'] / s['driver_peak_rss_mb']:.2f}x, "
          f"worker {l1['worker_peak_rss_mb'] / s['worker_peak_rss_mb']:.2f}x (target <= 1.2x)")
    print(f"rows/s {large} vs {small} rows (ray, 1 worker): end to end "
          f"{l1['rows_per_s'] / s['rows_per_s']:.2f}x, steady {l1['steady_rows_per_s'] / s['steady_rows_per_s']:.2f}x")
    print(f"2 vs 1 workers ({large} rows): speed-up end to end {l2['rows_per_s'] / l1['rows_per_s']:.2f}x, "
          f"steady {l2['steady_rows_per_s'] / l1['steady_rows_per_s']:.2f}x")
    e2e = loc["rows_per_s"] / l1["rows_per_s"] - 1
    steady = loc["steady_rows_per_s"] / l1["steady_rows_per_s"] - 1
    print(f"Ray overhead vs local executor, 1 worker ({large} rows): end to end {100 * e2e:+.1f}%, "
          f"steady {100 * steady:+.1f}% (target < 15%)")


if __name__ == "__main__":
    sys.exit(main())
