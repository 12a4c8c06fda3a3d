"""This machine's matmul peak per dtype, and a run's FLOP/s as a share of it (shared by the benches).

A model's work is counted the usual way: 2 x parameters FLOPs per token a
forward processes, 6 x parameters per token trained (forward + backward of
every weight matmul; attention scores and padding not counted). The peak is
the best of a few n x n matmuls in that dtype on this process's threads, so a
share near 1 means the run is as fast as this hardware multiplies matrices.
"""
from __future__ import annotations

import time

DTYPES = ("float32", "bfloat16")


def matmul_peak(dtype: str = "float32", n: int = 2048, reps: int = 5, device: str = "cpu") -> float:
    """Best FLOP/s of an n x n matmul in `dtype` on `device` (after one warm-up multiply)."""
    import torch

    a = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
    b = torch.randn(n, n, dtype=getattr(torch, dtype), device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0))
    return best


def print_peaks(dtypes: tuple[str, ...] = DTYPES, n: int = 2048, reps: int = 5) -> dict[str, float]:
    """Measure and print the matmul peak of each dtype; returns {dtype: FLOP/s}."""
    import torch

    peaks = {d: matmul_peak(d, n, reps) for d in dtypes}
    cells = ", ".join(f"{d} {p / 1e9:.0f} GFLOP/s" for d, p in peaks.items())
    print(f"matmul peak ({n}x{n}, best of {reps}, {torch.get_num_threads()} threads): {cells}", flush=True)
    return peaks


def model_flops(params: int, tokens: int, seconds: float, training: bool = False) -> float:
    """FLOP/s of processing `tokens` tokens in `seconds`: 2 x params per token forward, 6 x training."""
    return (6 if training else 2) * params * tokens / seconds


def share_of_peak(params: int, tokens: int, seconds: float, peak: float,
                  training: bool = False) -> tuple[float, float]:
    """(FLOP/s, its share of `peak`) of a forward-only or training run (see model_flops)."""
    flops = model_flops(params, tokens, seconds, training)
    return flops, flops / peak


def param_count(path: str) -> int:
    """Parameters of a checkpoint (a tied embedding counted once), built on the meta device: no weights read."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())
