"""Benchmark: greedy eval generation, transformers' generate vs this project's decode loop, with and
without the shared prefill of the prompts' common opening; same batches, alternating, one run.

    .venv/bin/python bench/decode_loop.py [--prompts 40] [--batch-size 40] [--max-new-tokens 32] [--reps 6]
        [--dtype auto]
    .venv/bin/python bench/decode_loop.py --curation [--prompts 24] [--batch-size 48] [--max-new-tokens 48]

--curation times curation's sampling instead: a safety-note prompt per corpus text (the demo's
`revise: note`), each sampled at the demo's 3 x 2 (temperature, top-p) grid, seeded, in the loop
with and without the shared opening (generate has no per-row settings to compare).

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
    parser.add_argument("--prompts", type=int, help="default 40 (eval), 24 corpus texts (--curation)")
    parser.add_argument("--batch-size", type=int, help="default 40 (eval), 48 rows (--curation)")
    parser.add_argument("--max-new-tokens", type=int, help="default 32 (eval), 48 (--curation)")
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--curation", action="store_true", help="time curation's note sampling instead")
    args = parser.parse_args()
    if args.curation:
        return curation(args.model, args.prompts or 24, args.batch_size or 48, args.max_new_tokens or 48,
                        args.reps, args.dtype)
    args.prompts, args.batch_size = args.prompts or 40, args.batch_size or 40
    args.max_new_tokens = args.max_new_tokens or 32

    import buckle.core.engine.hf_sample as loop
    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf_generate import generate
    from buckle.core.engine.hf_lm import chat, load_lm

    model, tok = load_lm(resolve_model(args.model), args.dtype, device="cpu")
    with open(materialize(args.benchmark), encoding="utf-8") as fh:
        convs = [chat(json.loads(line)["prompt"]) for line in fh][:args.prompts]
    shared_min = loop.MIN_SHARED_PREFIX

    outs: dict[str, list] = {}

    def run(mode: str) -> None:
        loop.MIN_SHARED_PREFIX = shared_min if mode == "loop+shared opening" else 10 ** 9
        out = generate(model, tok, convs, args.max_new_tokens, args.batch_size, exact_tokens=True,
                       via_generate=mode == "generate")
        outs[mode] = [g.ids for g in out]

    generate(model, tok, convs[:2], 4, 2)  # one-off costs
    times = alternate(MODES, run, args.reps)
    print(f"model {args.model} ({model.dtype}), {len(convs)} prompts x {args.max_new_tokens} new tokens, "
          f"batches of {args.batch_size}, {args.reps} repetitions; CPU seconds per run")
    base = statistics.median(times["generate"])
    for mode in MODES:
        med = statistics.median(times[mode])
        same = sum(a == b for a, b in zip(outs[mode], outs["generate"]))
        print(f"{mode:<22}{' '.join(f'{t:6.1f}' for t in times[mode])}   median {med:6.2f}   "
              f"vs generate {base / med:.2f}x   tokens equal {same}/{len(convs)}")


def curation(model_name: str, n: int, batch: int, new: int, reps: int, dtype: str) -> None:
    """The demo's note sampling with and without the shared opening, alternating; CPU seconds."""
    import buckle.core.engine.hf_sample as loop
    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf import HFEngine
    from buckle.core.engine.hf_lm import prompt_ids
    from buckle.curation.method.prompts import note_prompt

    engine = HFEngine.load(resolve_model(model_name), dtype, device="cpu", gen_batch_size=batch)
    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        texts = [json.loads(line) for line in fh][:n]
    grid = [(t, p) for t in (0.4, 0.6, 0.8) for p in (0.9, 1.0)]
    prompts = [prompt_ids(engine.tok, note_prompt(r["instruction"], r["response"], ["safety", "caution", "others"]))
               for r in texts for _ in grid]
    temps, tops = [t for _ in texts for t, _ in grid], [p for _ in texts for _, p in grid]
    shared_min = loop.MIN_SHARED_PREFIX
    modes = ("loop", "loop+shared opening")

    def run(mode: str) -> None:
        loop.MIN_SHARED_PREFIX = shared_min if mode == "loop+shared opening" else 10 ** 9
        engine.sample(prompts, temps, tops, [new] * len(prompts), seed=0, min_new_tokens=new)

    times = alternate(modes, run, reps)
    opening = loop._common_prefix(list(dict.fromkeys(tuple(p) for p in prompts)))
    print(f"model {model_name} ({engine.model.dtype}), {len(texts)} note prompts x {len(grid)} grid pairs x {new} "
          f"tokens, batches of {batch}, {reps} repetitions; common opening {opening} of "
          f"{sum(map(len, prompts)) / len(prompts):.0f} tokens; CPU seconds per run")
    for mode in modes:
        print(f"{mode:<22}{' '.join(f'{t:6.1f}' for t in times[mode])}   median {statistics.median(times[mode]):6.2f}")
    print(f"shared opening vs not: {statistics.median(times['loop']) / statistics.median(times[modes[1]]):.2f}x")


def alternate(modes: tuple[str, ...], run, reps: int) -> dict[str, list[float]]:
    """CPU seconds of `run(mode)` per mode over `reps` rounds, the order reversed every other round."""
    times: dict[str, list[float]] = {m: [] for m in modes}
    for rep in range(reps):
        for mode in modes if rep % 2 == 0 else modes[::-1]:
            t0 = time.process_time()
            run(mode)
            times[mode].append(time.process_time() - t0)
    return times

if __name__ == "__main__":
    main()
