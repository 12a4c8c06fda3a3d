"""Benchmark: batched vs one-prompt-at-a-time generation, same prompts and tokens, one run.

Both modes decode exactly --max-new-tokens tokens per prompt (greedy, end-of-turn
ignored), so they do the same work; the script also reports whether the two
modes produced identical tokens.

    .venv/bin/python bench/eval_generation.py [--prompts 32] [--batch-size 32] [--max-new-tokens 32]
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--benchmark", default="advbench-test")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    from buckle.eval.generate import chat, generate, load_model
    from buckle.launcher.data import materialize
    from buckle.launcher.models import resolve_model

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


if __name__ == "__main__":
    main()
