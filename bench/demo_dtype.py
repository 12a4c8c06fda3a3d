"""`make demo`'s pipeline in one dtype everywhere: curation, every training and every evaluation.

    .venv/bin/python bench/demo_dtype.py --dtype float32 [--config quickstart] [--output runs/quickstart-float32]

The shipped demo runs `dtype: auto` (bfloat16 on a CPU with AMX or avx512_bf16).
This writes a copy of the shipped config with curate.dtype and eval.dtype set
and `bf16` set in every stage's overrides, then runs `buckle pipeline` on it
under `time`, so the two end-to-end times can be set side by side. Run it
alone: the figure is a wall time.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def pinned(config: dict, dtype: str) -> dict:
    """The pipeline config with every engine and trainer in `dtype`."""
    out = {**config, "curate": {**config.get("curate", {}), "dtype": dtype},
           "eval": {**config.get("eval", {}), "dtype": dtype}}
    out["stages"] = {name: {**spec, "overrides": {**spec.get("overrides", {}), "bf16": dtype == "bfloat16"}}
                     for name, spec in config["stages"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], required=True)
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    from buckle.launcher.pipeline.config import resolve

    config = yaml.safe_load(resolve(args.config).read_text())
    config["name"] = f"{config.get('name', args.config)}-{args.dtype}"
    output = args.output or f"runs/{config['name']}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(pinned(config, args.dtype), sort_keys=False))
        start = time.time()
        rc = subprocess.call([sys.executable, "-m", "buckle.launcher.cli", "pipeline", "--config", str(path),
                              "--output", output])
    print(f"{args.config} in {args.dtype}: {time.time() - start:.0f} s end to end (rc {rc}), report in {output}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
