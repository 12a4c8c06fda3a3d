"""Benchmark: batched vs one-prompt-at-a-time generation, same prompts and tokens, one run.

Both modes decode exactly --max-new-tokens tokens per prompt (greedy, end-of-turn
ignored), so they do the same work; the script also reports whether the two
modes produced identical tokens. Where vLLM is installed (--engines hf,vllm), the vLLM
engine then decodes the same prompts (greedy, same token count) in one call, and its
time, tokens/s, ratio vs the HF batched engine and token agreement are printed.

    .venv/bin/python bench/eval_generation.py [--prompts 32] [--batch-size 32] [--max-new-tokens 32]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs at INFO on stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--benchmark", default="advbench-test")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--engines", default="hf,vllm" if importlib.util.find_spec("vllm") else "hf",
                        help="engines to compare (vllm: loaded after the HF runs)")
    args = parser.parse_args()

    import torch

    from buckle.core.engine.hf_generate import generate
    from buckle.core.engine.hf_lm import chat
    from buckle.core.engine.hf_lm import load_lm as load_model
    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model

    with open(materialize(args.benchmark), encoding="utf-8") as fh:
        prompts = [json.loads(line)["prompt"] for line in fh][:args.prompts]
    model, tok = load_model(resolve_model(args.model))
    convs = [chat(p) for p in prompts]
    generate(model, tok, convs[:2], max_new_tokens=4, batch_size=2)  # warm-up

    t0 = time.perf_counter()
    batched = generate(model, tok, convs, args.max_new_tokens, args.batch_size, exact_tokens=True)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [generate(model, tok, [c], args.max_new_tokens, 1, exact_tokens=True)[0] for c in convs]
    t_single = time.perf_counter() - t0

    tokens = sum(g.tokens for g in batched)
    assert tokens == sum(g.tokens for g in single) == len(prompts) * args.max_new_tokens
    same = sum(b.ids == s.ids for b, s in zip(batched, single))
    print(f"model {args.model}, {len(prompts)} prompts x {args.max_new_tokens} new tokens, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'mode':<22}{'seconds':>10}{'tokens/s':>12}")
    print(f"{'one at a time':<22}{t_single:>10.2f}{tokens / t_single:>12.1f}")
    print(f"{f'batched (batch {args.batch_size})':<22}{t_batched:>10.2f}{tokens / t_batched:>12.1f}")
    print(f"speedup: {t_single / t_batched:.2f}x; identical outputs: {same}/{len(prompts)}")
    if "vllm" in args.engines.split(","):
        _vllm_column(args, convs, batched, t_batched, tokens)


def _vllm_column(args, convs, batched, t_batched: float, tokens: int) -> None:
    """The same greedy work on the vLLM engine, after a warm-up call; ratio vs the HF batched engine."""
    from buckle.core.engine.select import choose
    from buckle.core.engine.vllm_backend import VLLMEngine
    from buckle.core.catalog.models import resolve_model

    t0 = time.perf_counter()
    engine = VLLMEngine(resolve_model(args.model), device="cpu", kv_cache_gib=2)
    load_s = time.perf_counter() - t0
    engine.greedy(convs[:2], 4)
    t0 = time.perf_counter()
    outs = engine.greedy(convs, args.max_new_tokens, exact_tokens=True)
    t_vllm = time.perf_counter() - t0
    engine.close()
    same = sum(a.ids == b.ids for a, b in zip(batched, outs))
    print(f"{'vllm (one call)':<22}{t_vllm:>10.2f}{tokens / t_vllm:>12.1f}   (loaded in {load_s:.1f} s)")
    print(f"vllm / hf batched time: {t_vllm / t_batched:.2f}x; tokens equal to hf batched: {same}/{len(convs)}")
    print(f"auto on this CPU picks {choose('auto', 'cpu')[0]}; faster here: {'vllm' if t_vllm < t_batched else 'hf'}")


if __name__ == "__main__":
    main()
