"""`dtype: auto`: bfloat16 where the hardware runs it fast, float32 elsewhere.

Measured on a 2-core Xeon with AMX (torch 2.13, 2 threads): a 2048x2048 matmul
runs 294 GFLOP/s in float32 and 2.0 TFLOP/s in bfloat16, so every engine and
trainer that says `auto` takes bfloat16 on such a CPU, as on a CUDA GPU that
supports it. The choice and its reason go into run manifests.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

DTYPES = ("auto", "float32", "bfloat16", "float16")
# CPU flags (Linux /proc/cpuinfo) under which oneDNN runs bfloat16 matmuls natively
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bfloat16 flags this CPU reports (empty where none, or off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    return tuple(f for f in BF16_CPU_FLAGS if f in flags)


def resolve_dtype(requested: str = "auto", device: str = "cpu") -> tuple[str, str]:
    """The dtype a run uses and why.

    Args:
        requested: "auto", "float32", "bfloat16" or "float16".
        device: the resolved device ("cpu", "cuda", "cuda:N").

    Returns:
        (dtype name, reason).

    Raises:
        ValueError: an unknown dtype name.
    """
    if requested not in DTYPES:
        raise ValueError(f"dtype: unknown {requested!r}; known: {', '.join(DTYPES)}")
    if requested != "auto":
        warn_if_emulated(requested, device)
        return requested, "asked for"
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_bf16_supported():
            return "bfloat16", "auto: CUDA device with bfloat16"
        return "float32", "auto: CUDA device without bfloat16"
    flags = cpu_bf16_flags()
    if flags:
        return "bfloat16", f"auto: CPU with {', '.join(flags)}"
    return "float32", "auto: CPU without native bfloat16 (amx_bf16 / avx512_bf16)"


def warn_if_emulated(dtype: str, device: str) -> None:
    """Warn when bfloat16 is asked for on a CPU without native bfloat16.

    Measured on a 2-core AVX2-only EPYC (torch 2.13): a 1024x1024 matmul ran 67 GFLOP/s in
    float32 and 0.7 GFLOP/s in bfloat16, so a pinned bfloat16 there is ~100x slower, not faster.
    """
    if dtype == "bfloat16" and device == "cpu" and not cpu_bf16_flags():
        warnings.warn("bfloat16 asked for on a CPU without native bfloat16 (amx_bf16 / avx512_bf16): its "
                      "matmuls are emulated, about 100x slower than float32 on such a CPU; "
                      "`auto` would pick float32", RuntimeWarning, stacklevel=3)
