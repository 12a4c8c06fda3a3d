"""Benchmark: greedy eval generation, transformers' generate vs this project's decode loop, with and
without the shared prefill of the prompts' common opening; same batches, alternating, one run.

    .venv/bin/python bench/decode_loop.py [--prompts 40] [--batch-size 40] [--max-new-tokens 32] [--reps 6]
        [--dtype auto]

Each mode decodes exactly --max-new-tokens tokens per prompt; the modes run in turn, the order
reversed every other repetition. Times are CPU seconds of this process (all threads), which a busy
host's preemption inflates less than wall-clock seconds; medians are compared.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

MODES = ("generate", "loop", "loop+shared opening")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--benchmark", default="advbench-test")
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    import buckle.core.engine.hf_sample as loop
    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf_generate import generate
    from buckle.core.engine.hf_lm import chat, load_lm

    model, tok = load_lm(resolve_model(args.model), args.dtype, device="cpu")
    with open(materialize(args.benchmark), encoding="utf-8") as fh:
        convs = [chat(json.loads(line)["prompt"]) for line in fh][:args.prompts]
    shared_min = loop.MIN_SHARED_PREFIX

    def run(mode: str) -> tuple[float, list]:
        loop.MIN_SHARED_PREFIX = shared_min if mode == "loop+shared opening" else 10 ** 9
        t0 = time.process_time()
        out = generate(model, tok, convs, args.max_new_tokens, args.batch_size, exact_tokens=True,
                       via_generate=mode == "generate")
        return time.process_time() - t0, [g.ids for g in out]

    generate(model, tok, convs[:2], 4, 2)  # one-off costs
    times: dict[str, list[float]] = {m: [] for m in MODES}
    outs: dict[str, list] = {}
    for rep in range(args.reps):
        for mode in MODES if rep % 2 == 0 else MODES[::-1]:
            secs, outs[mode] = run(mode)
            times[mode].append(secs)
    print(f"model {args.model} ({model.dtype}), {len(convs)} prompts x {args.max_new_tokens} new tokens, "
          f"batches of {args.batch_size}, {args.reps} repetitions; CPU seconds per run")
    base = statistics.median(times["generate"])
    for mode in MODES:
        med = statistics.median(times[mode])
        same = sum(a == b for a, b in zip(outs[mode], outs["generate"]))
        print(f"{mode:<22}{' '.join(f'{t:6.1f}' for t in times[mode])}   median {med:6.2f}   "
              f"vs generate {base / med:.2f}x   tokens equal {same}/{len(convs)}")


if __name__ == "__main__":
    main()
