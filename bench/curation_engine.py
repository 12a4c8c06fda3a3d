"""Batched curation engine vs a naive loop, per dtype, and vs vLLM: same records, candidates and model, one process.

Batched: one round's candidates (every record x every (temperature, top-p)
pair) come from `generate` calls with per-row sampling settings, and their
perplexities from padded, length-bucketed forwards. Naive: one `generate`
per (text, T, p) and one forward per candidate. Generation length is fixed
(min = max new tokens) so both paths decode the same number of tokens.

    .venv/bin/python bench/curation_engine.py [--records 2] [--max-new-tokens 24] [--model embedded]
        [--dtypes auto | float32,bfloat16] [--engines hf,vllm] [--no-naive]

The HF model is loaded once per dtype of --dtypes (default auto: the dtype
the shipped install picks here). Each (dtype, path) runs twice, in the order
of the list and then in reverse (one dtype: batched, naive, naive, batched),
and the times are summed, so a machine whose load changes during the run
favours no path and no dtype. Where vLLM is installed here or in its own
environment (served; --engines hf,vllm), it then runs the same batched work
twice per dtype (generation per-row sampling settings, perplexity by
prompt_logprobs), after the HF runs, since its idle worker would otherwise
share the cores with them; its load is printed apart. vLLM caches prefixes,
so its second run reuses the first's prompt prefills (the HF engine keeps no
cache across calls).

Prints the matmul peak of float32 and bfloat16 first; per dtype the seconds
of each path and their ratio vs the HF batched engine (the batched-vs-naive
figure); then one row per (engine, dtype) with generation and perplexity
seconds, tokens/s and model FLOP/s (2 x params per prompt, new or scored
token) as a share of that dtype's measured peak; and, with both float32 and
bfloat16, the bfloat16 speedups (float32 time over bfloat16 time).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time

from peak import DTYPES, param_count, print_peaks, share_of_peak

from buckle.core.engine.select import choose, load_engine, vllm_env, vllm_installed

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs at INFO on stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--temperatures", default="0.2,0.4,0.6,0.8,1.0")
    parser.add_argument("--top-ps", default="0.2,0.4,0.6,0.8,1.0")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--dtypes", "--dtype", default="auto",
                        help="auto (bfloat16 on a CPU with AMX/avx512_bf16), float32, bfloat16, or a list: "
                             "float32,bfloat16 runs them side by side")
    parser.add_argument("--gen-batch-size", type=int, default=64)
    parser.add_argument("--score-batch-size", type=int, default=16)
    parser.add_argument("--engines", default="hf,vllm" if vllm_installed() or vllm_env() else "hf",
                        help="batched engines to compare (vllm: in-process or served, loaded after the HF runs)")
    parser.add_argument("--no-naive", dest="naive", action="store_false", help="skip the naive loop")
    parser.add_argument("--no-abba", dest="abba", action="store_false",
                        help="run each path once (default: twice, the order then its reverse)")
    args = parser.parse_args()

    import torch

    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf import HFEngine
    from buckle.core.engine.hf_lm import load_lm, perplexities, prompt_ids
    from buckle.core.precision import resolve_dtype
    from buckle.curation.config import SAFETY_KEYWORDS
    from buckle.curation.io.records import prompt_text
    from buckle.curation.method.engine import MIN_BUDGET, LMEngine
    from buckle.curation.method.prompts import revision_prompt

    if args.max_new_tokens < MIN_BUDGET:  # the engine skips such rows: nothing would be measured
        parser.error(f"--max-new-tokens: at least {MIN_BUDGET} (the curation engine's smallest budget)")

    path, dtypes = resolve_model(args.model), [resolve_dtype(d, "cpu")[0] for d in args.dtypes.split(",")]
    peaks = print_peaks(tuple(dict.fromkeys([*DTYPES, *dtypes])))
    with open(materialize("commonsense-train"), encoding="utf-8") as fh:
        records = [json.loads(line) for line in itertools.islice(fh, args.records)]
    grid = list(itertools.product([float(x) for x in args.temperatures.split(",")],
                                  [float(x) for x in args.top_ps.split(",")]))
    rows = [(r, t, p) for r in records for t, p in grid]
    users = [revision_prompt("amplify", prompt_text(r), r["response"], SAFETY_KEYWORDS) for r, _, _ in rows]
    prompts = [prompt_text(r) for r, _, _ in rows]
    n_new, params = args.max_new_tokens, param_count(path)
    print(f"{len(records)} records x {len(grid)} (T, top_p) pairs = {len(rows)} candidates, {n_new} new tokens "
          f"each, {params / 1e6:.0f}M params, threads={torch.get_num_threads()}, dtypes={','.join(dtypes)}")

    def batched(engine: LMEngine) -> tuple[float, float, int]:
        t0 = time.perf_counter()
        outs = engine.generate(users, [t for _, t, _ in rows], [p for _, _, p in rows], [n_new] * len(rows),
                               min_new_tokens=n_new)
        t1 = time.perf_counter()
        engine.perplexity(prompts, [text for text, _ in outs])
        scored = sum(engine.prompt_tokens(p) + engine.text_tokens(text) for p, (text, _) in zip(prompts, outs))
        return t1 - t0, time.perf_counter() - t1, scored

    def warm_up(engine: LMEngine) -> None:
        # first calls pay one-off costs; other texts than the work's, so vLLM's prefix cache gains nothing
        outs = engine.generate(["Say hello.", "Name a colour."], [1.0, 1.0], [1.0, 1.0], [8, 8])
        engine.perplexity(["Hi.", "A colour?"], [text or "ok" for text, _ in outs])

    def naive(model, tok) -> tuple[float, float, int]:
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
        return t1 - t0, time.perf_counter() - t1, 0

    hf = {}
    for dtype in dtypes:
        model, tok = load_lm(path, dtype, device="cpu")
        hf[dtype] = (model, tok, LMEngine(HFEngine(model, tok, gen_batch_size=args.gen_batch_size,
                                                   score_batch_size=args.score_batch_size)))
        warm_up(hf[dtype][2])
    # generation FLOPs: each distinct revision prompt's prefill once (its rows share it) plus the new tokens
    prefill = sum(len(prompt_ids(tok, u)) for u in dict.fromkeys(users))
    # the list, then its reverse: load that drifts during the run hits every (dtype, path) alike
    seq = [(d, p) for d in dtypes for p in (("batched", "naive") if args.naive else ("batched",))]
    totals = {d: {p: [0.0, 0.0, 0] for _, p in seq} for d in dtypes}
    for dtype, name in seq + (seq[::-1] if args.abba else []):
        model, tok, engine = hf[dtype]
        gen_s, ppl_s, scored = batched(engine) if name == "batched" else naive(model, tok)
        totals[dtype][name] = [a + b for a, b in zip(totals[dtype][name], (gen_s, ppl_s, scored))]
        print(f"  {dtype} {name}: generate {gen_s:.2f} s, perplexity {ppl_s:.2f} s", flush=True)
    runs = 2 if args.abba else 1
    if "vllm" in args.engines.split(","):
        for dtype in dtypes:
            t0 = time.perf_counter()
            vllm = load_engine(path, backend="vllm", dtype=dtype, device="cpu", kv_cache_gib=2,
                               scorer="prompt_logprobs", seed=0)
            print(f"  vllm {dtype} ({vllm.choice[0]}, dtype {vllm.describe().get('dtype')}): "
                  f"loaded in {time.perf_counter() - t0:.1f} s", flush=True)
            totals[dtype]["vllm"], v_engine = [0.0, 0.0, 0], LMEngine(vllm, seed=0)
            try:
                warm_up(v_engine)
                for _ in range(runs):
                    gen_s, ppl_s, scored = batched(v_engine)
                    totals[dtype]["vllm"] = [a + b for a, b in zip(totals[dtype]["vllm"], (gen_s, ppl_s, scored))]
                    print(f"  vllm {dtype}: generate {gen_s:.2f} s, perplexity {ppl_s:.2f} s", flush=True)
            finally:
                vllm.close()

    tokens = len(rows) * n_new
    for dtype in dtypes:
        print(f"{dtype}:")
        _table(totals[dtype], runs, tokens)
    _dtype_table(totals, runs, params, peaks, runs * (prefill + tokens), runs * tokens)
    print(f"auto on this CPU picks {choose('auto', 'cpu')[0]}")


def _table(totals: dict, runs: int, tokens: int) -> None:
    """Seconds per path (summed over its runs) and each path's ratio vs the HF batched engine."""
    (b_gen, b_ppl, _) = totals["batched"]
    paths = [p for p in ("naive", "vllm") if p in totals]
    print(f"{'':12s}{'hf batched s':>13s}" + "".join(f"{p + ' s':>10s}{'/hf':>7s}" for p in paths))
    for k, name in enumerate(("generate", "perplexity", "total")):
        base = (b_gen, b_ppl, b_gen + b_ppl)[k]
        cells = ""
        for p in paths:
            g, q, _ = totals[p]
            v = (g, q, g + q)[k]
            cells += f"{v:10.2f}{v / base:6.2f}x"
        print(f"{name:12s}{base:13.2f}{cells}")
    print(f"hf generate: {runs * tokens / b_gen:.0f} tok/s", end="")
    if "vllm" in totals:
        print(f"; vllm generate: {runs * tokens / totals['vllm'][0]:.0f} tok/s", end="")
    faster = "vllm" if "vllm" in totals and sum(totals["vllm"][:2]) < b_gen + b_ppl else "hf"
    print(f"; faster here: {faster}")


def _dtype_table(totals: dict, runs: int, params: int, peaks: dict, gen_tokens: int, new_tokens: int) -> None:
    """Per (engine, dtype): generation and perplexity seconds, tok/s, FLOP/s share of the dtype's peak."""
    print(f"{'engine':<12}{'dtype':<10}{'generate s':>11}{'tok/s':>8}{'of peak':>9}"
          f"{'perplexity s':>13}{'of peak':>9}")
    for engine in ("batched", "vllm"):
        for dtype, t in totals.items():
            if engine in t:
                gen_s, ppl_s, scored = t[engine]
                gen_share = share_of_peak(params, gen_tokens, gen_s, peaks[dtype])[1]
                ppl_share = share_of_peak(params, scored, ppl_s, peaks[dtype])[1]
                label = "hf batched" if engine == "batched" else "vllm"
                print(f"{label:<12}{dtype:<10}{gen_s:>11.2f}{new_tokens / gen_s:>8.0f}{gen_share:>9.1%}"
                      f"{ppl_s:>13.2f}{ppl_share:>9.1%}")
    if {"float32", "bfloat16"} <= totals.keys():
        f, b = totals["float32"], totals["bfloat16"]
        for engine in ("batched", "vllm"):
            if engine in f and engine in b:
                label = "hf batched" if engine == "batched" else "vllm"
                print(f"bfloat16 vs float32, {label} (float32 time / bfloat16 time): generation "
                      f"{f[engine][0] / b[engine][0]:.2f}x, perplexity {f[engine][1] / b[engine][1]:.2f}x, "
                      f"total {sum(f[engine][:2]) / sum(b[engine][:2]):.2f}x")


if __name__ == "__main__":
    main()
