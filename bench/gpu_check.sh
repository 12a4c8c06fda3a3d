#!/usr/bin/env bash
# The one prepared GPU check, run on a lent GPU machine from the repo root with .whl carried
# (bench/gpu_wheels.sh builds it): engine speed per dtype, then training bf16 vs float32.
# Logs go to $OUT (or /tmp/buckle-gpu-out). Needs about 8 minutes on an H100/H200.
set -uo pipefail
OUT=${OUT:-/tmp/buckle-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import torch, transformers, deepspeed, peft
from buckle.core.precision import resolve_dtype
print("torch", torch.__version__, "transformers", transformers.__version__, "deepspeed", deepspeed.__version__,
      "peft", peft.__version__, "gpu", torch.cuda.get_device_name(0))
print("dtype auto on cuda ->", resolve_dtype("auto", "cuda"))
PY
timeout 240 python3 bench/gpu_engine_check.py --engines hf 2>&1 | tee "$OUT/engine.log"
timeout 120 python3 bench/gpu_train_check.py --out /tmp/gt-bf16 2>&1 | tee "$OUT/train-bf16.log"
timeout 120 python3 bench/gpu_train_check.py --bf16 false --model /tmp/gt-bf16/base --out /tmp/gt-fp32 2>&1 \
  | tee "$OUT/train-fp32.log"
