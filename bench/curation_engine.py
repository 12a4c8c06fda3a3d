"""Batched curation engine vs a naive loop: same records, same candidates, same model, one process.

Batched: one round's candidates (every record x every (temperature, top-p)
pair) come from `generate` calls with per-row sampling settings, and their
perplexities from padded, length-bucketed forwards. Naive: one `generate`
per (text, T, p) and one forward per candidate. Generation length is fixed
(min = max new tokens) so both paths decode the same number of tokens.

    .venv/bin/python bench/curation_engine.py [--records 2] [--max-new-tokens 24] [--model embedded]

Each path runs twice in the order batched, naive, naive, batched and the
times are summed, so a machine whose load changes during the run does not
favour either path. Where vLLM is installed (--engines hf,vllm), the vLLM
engine then runs the same batched work twice (generation per-row
SamplingParams, perplexity by prompt_logprobs) and a column of ratios vs the
HF engine is printed; vLLM loads after the HF runs, since its idle worker
process would otherwise share the cores with them.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs at INFO on stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--temperatures", default="0.2,0.4,0.6,0.8,1.0")
    parser.add_argument("--top-ps", default="0.2,0.4,0.6,0.8,1.0")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 on a CPU with AMX/avx512_bf16), float32, bfloat16")
    parser.add_argument("--gen-batch-size", type=int, default=64)
    parser.add_argument("--score-batch-size", type=int, default=16)
    parser.add_argument("--engines", default="hf,vllm" if _has_vllm() else "hf",
                        help="batched engines to compare (vllm: loaded after the HF runs)")
    parser.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive loop")
    parser.add_argument("--no-abba", dest="abba", action="store_false",
                        help="run each path once (default: batched, naive, naive, batched)")
    args = parser.parse_args()

    import torch

    from buckle.curation.config import SAFETY_KEYWORDS
    from buckle.core.engine.hf import HFEngine
    from buckle.curation.method.engine import LMEngine
    from buckle.core.engine.hf_lm import load_lm, perplexities, prompt_ids
    from buckle.curation.method.prompts import revision_prompt
    from buckle.curation.io.records import prompt_text
    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model

    model, tok = load_lm(resolve_model(args.model), args.dtype, device="cpu")
    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        records = [json.loads(line) for line in itertools.islice(fh, args.records)]
    grid = list(itertools.product([float(x) for x in args.temperatures.split(",")],
                                  [float(x) for x in args.top_ps.split(",")]))
    rows = [(r, t, p) for r in records for t, p in grid]
    users = [revision_prompt("amplify", prompt_text(r), r["response"], SAFETY_KEYWORDS) for r, _, _ in rows]
    prompts = [prompt_text(r) for r, _, _ in rows]
    n_new = args.max_new_tokens
    print(f"{len(records)} records x {len(grid)} (T, top_p) pairs = {len(rows)} candidates, "
          f"{n_new} new tokens each, threads={torch.get_num_threads()}, dtype={model.buckle_dtype[0]}")

    engine = LMEngine(HFEngine(model, tok, gen_batch_size=args.gen_batch_size,
                               score_batch_size=args.score_batch_size))

    def batched(engine=engine) -> tuple[float, float]:
        t0 = time.perf_counter()
        outs = engine.generate(users, [t for _, t, _ in rows], [p for _, _, p in rows], [n_new] * len(rows),
                               min_new_tokens=n_new)
        t1 = time.perf_counter()
        engine.perplexity(prompts, [text for text, _ in outs])
        return t1 - t0, time.perf_counter() - t1

    def naive() -> tuple[float, float]:
        texts = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            for user, (_, t, p) in zip(users, rows):
                ids = torch.tensor([prompt_ids(tok, user)])
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                     temperature=t, top_p=p, top_k=0, max_new_tokens=n_new,
                                     min_new_tokens=n_new, pad_token_id=tok.pad_token_id)
                texts.append(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
        t1 = time.perf_counter()
        for prompt, text in zip(prompts, texts):
            perplexities(model, tok, [prompt], [text], batch_size=1)
        return t1 - t0, time.perf_counter() - t1

    # A B B A: load that drifts during the run (a shared machine) hits both paths alike
    totals = {"batched": [0.0, 0.0], **({"naive": [0.0, 0.0]} if args.naive else {})}
    order = ("batched", "naive", "naive", "batched") if args.naive else ("batched", "batched")
    for name in order[: 4 if args.abba else 2]:
        gen_s, ppl_s = batched() if name == "batched" else naive()
        totals[name][0] += gen_s
        totals[name][1] += ppl_s
        print(f"  {name}: generate {gen_s:.2f} s, perplexity {ppl_s:.2f} s", flush=True)
    runs = {"batched": order[: 4 if args.abba else 2].count("batched")}
    if "vllm" in args.engines.split(","):
        from buckle.core.engine.vllm_backend import VLLMEngine

        t0 = time.perf_counter()
        vllm = VLLMEngine(resolve_model(args.model), device="cpu", kv_cache_gib=2, scorer="prompt_logprobs")
        print(f"  vllm: loaded in {time.perf_counter() - t0:.1f} s", flush=True)
        v_engine = LMEngine(vllm, seed=0)
        totals["vllm"] = [0.0, 0.0]
        for _ in range(runs["batched"]):
            gen_s, ppl_s = batched(v_engine)
            totals["vllm"][0] += gen_s
            totals["vllm"][1] += ppl_s
            print(f"  vllm: generate {gen_s:.2f} s, perplexity {ppl_s:.2f} s", flush=True)
        vllm.close()
    _table(totals, runs["batched"], len(rows) * n_new)


def _table(totals: dict, runs: int, tokens: int) -> None:
    """Seconds per path (summed over its runs) and each path's ratio vs the HF batched engine."""
    from buckle.core.engine.select import choose

    (b_gen, b_ppl) = totals["batched"]
    paths = [p for p in ("naive", "vllm") if p in totals]
    print(f"{'':12s}{'hf batched s':>13s}" + "".join(f"{p + ' s':>10s}{'/hf':>7s}" for p in paths))
    for k, name in enumerate(("generate", "perplexity", "total")):
        base = (b_gen, b_ppl, b_gen + b_ppl)[k]
        cells = ""
        for p in paths:
            g, q = totals[p]
            v = (g, q, g + q)[k]
            cells += f"{v:10.2f}{v / base:6.2f}x"
        print(f"{name:12s}{base:13.2f}{cells}")
    print(f"hf generate: {runs * tokens / b_gen:.0f} tok/s", end="")
    if "vllm" in totals:
        print(f"; vllm generate: {runs * tokens / totals['vllm'][0]:.0f} tok/s", end="")
    faster = "vllm" if "vllm" in totals and sum(totals["vllm"]) < b_gen + b_ppl else "hf"
    print(f"\nauto on this CPU picks {choose('auto', 'cpu')[0]}; faster here: {faster}")


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None

if __name__ == "__main__":
    main()
