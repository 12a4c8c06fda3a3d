"""The reviser's cost: load time, batched sampling tok/s and a perplexity forward, float32 vs bfloat16.

    .venv/bin/python bench/reviser.py [--model qwen2.5-coder-1.5b-instruct] [--rows 32] [--max-new-tokens 64]

One process, one model at a time: for each dtype it loads the converted
checkpoint (timed), samples `rows` amplify revision prompts of the embedded
corpus at a fixed length (min = max new tokens, so both dtypes decode the
same number of tokens), and scores those outputs' perplexity in one batched
pass. The dtypes run in the order bfloat16, float32, float32, bfloat16 (the
first load of each is a cold read of the file) and the steady runs are
summed, so drifting machine load favours neither. Prints the ratios.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    args = parser.parse_args()

    import torch

    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf import HFEngine
    from buckle.core.precision import resolve_dtype
    from buckle.curation.config import SAFETY_KEYWORDS
    from buckle.curation.io.records import prompt_text
    from buckle.curation.method.prompts import revision_prompt

    path = resolve_model(args.model)  # converts once, outside the timings
    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        records = [json.loads(line) for line in itertools.islice(fh, args.rows)]
    users = [revision_prompt("amplify", prompt_text(r), r["response"], SAFETY_KEYWORDS) for r in records]
    prompts = [prompt_text(r) for r in records]
    n = args.max_new_tokens
    dtypes = args.dtypes.split(",")
    print(f"{args.model}: {len(users)} rows x {n} new tokens, threads={torch.get_num_threads()}, "
          f"auto here = {resolve_dtype('auto', 'cpu')}")
    totals = {d: {"load": 0.0, "gen": 0.0, "ppl": 0.0, "runs": 0} for d in dtypes}
    for dtype in dtypes + dtypes[::-1]:
        t0 = time.perf_counter()
        engine = HFEngine.load(path, dtype, "cpu", gen_batch_size=len(users), score_batch_size=len(users))
        load = time.perf_counter() - t0
        ids = [engine.prompt_ids(u) for u in users]
        t1 = time.perf_counter()
        samples = engine.sample(ids, [0.7] * len(ids), [0.9] * len(ids), [n] * len(ids), seed=0, min_new_tokens=n)
        gen = time.perf_counter() - t1
        texts = [engine.tok.decode(s.ids, skip_special_tokens=True) for s in samples]
        t2 = time.perf_counter()
        engine.perplexity(prompts, texts)
        ppl = time.perf_counter() - t2
        print(f"  {dtype}: load {load:.1f} s, generate {gen:.1f} s ({len(ids) * n / gen:.1f} tok/s), "
              f"perplexity {ppl:.1f} s", flush=True)
        t = totals[dtype]
        t["load"], t["gen"], t["ppl"], t["runs"] = t["load"] + load, t["gen"] + gen, t["ppl"] + ppl, t["runs"] + 1
        del engine
    base = totals[dtypes[-1]]
    for d in dtypes:
        t = totals[d]
        print(f"{d:9s} load {t['load'] / t['runs']:.1f} s/run, generate {t['runs'] * len(users) * n / t['gen']:.1f} "
              f"tok/s ({base['gen'] / t['gen']:.2f}x {dtypes[-1]}), perplexity {t['ppl'] / t['runs']:.1f} s "
              f"({base['ppl'] / t['ppl']:.2f}x)")


if __name__ == "__main__":
    main()
