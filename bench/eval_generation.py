"""Benchmark: eval generation batched vs one prompt at a time, float32 vs bfloat16, hf vs vLLM, same work, one run.

Every row decodes exactly --max-new-tokens greedy tokens per prompt (end-of-turn
ignored) from the same prompts, so all do the same work. For each dtype of
--dtypes the HF engine runs batched (the project's decode loop), batched
through transformers' `generate`, and one prompt at a time (in that order),
and the script reports whether they produced identical tokens. Where vLLM is
installed here or in its own environment (served; --engines hf,vllm), it then
decodes the same prompts in each dtype in one call, after the HF runs (its idle
server would otherwise share the cores with them); its load (server start-up)
is printed apart from its work time.

    .venv/bin/python bench/eval_generation.py [--prompts 32] [--batch-size 32] [--max-new-tokens 32]
        [--dtypes float32,bfloat16] [--engines hf,vllm]

Prints the matmul peak of float32 and bfloat16 first, then one row per
(engine, dtype, mode): seconds, new tokens/s, and model FLOP/s (2 x params per
prompt or new token) as a share of that dtype's measured peak; then the
batched-vs-one-at-a-time speedup, the bfloat16/float32 speedup (float32 time
over bfloat16 time) and vLLM's time over the HF batched engine's, per dtype.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from peak import DTYPES, param_count, print_peaks, share_of_peak

from buckle.core.engine.select import choose, load_engine, vllm_env, vllm_installed

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM logs at INFO on stdout
# first calls pay one-off costs; other prompts than the work's, so vLLM's prefix cache gains nothing
WARM_UP = [[{"role": "user", "content": "Say hello."}], [{"role": "user", "content": "Name a colour."}]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--benchmark", default="advbench-test")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--dtypes", default="float32,bfloat16", help="dtypes to run, side by side")
    parser.add_argument("--engines", default="hf,vllm" if vllm_installed() or vllm_env() else "hf",
                        help="engines to compare (vllm: in-process or served, loaded after the HF runs)")
    args = parser.parse_args()

    import torch

    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.core.engine.hf_generate import generate
    from buckle.core.engine.hf_lm import chat, encode, load_lm
    from buckle.core.precision import resolve_dtype

    path, dtypes = resolve_model(args.model), [resolve_dtype(d, "cpu")[0] for d in args.dtypes.split(",")]
    peaks = print_peaks(tuple(dict.fromkeys([*DTYPES, *dtypes])))
    with open(materialize(args.benchmark), encoding="utf-8") as fh:
        prompts = [json.loads(line)["prompt"] for line in fh][:args.prompts]
    convs = [chat(p) for p in prompts]
    params, new = param_count(path), len(prompts) * args.max_new_tokens
    print(f"model {args.model} ({params / 1e6:.0f}M params), {len(prompts)} prompts x {args.max_new_tokens} "
          f"new tokens, torch threads {torch.get_num_threads()}", flush=True)

    hf: dict[str, dict] = {}
    for dtype in dtypes:
        model, tok = load_lm(path, dtype, device="cpu")
        generate(model, tok, WARM_UP, max_new_tokens=4, batch_size=2)
        t0 = time.perf_counter()
        batched = generate(model, tok, convs, args.max_new_tokens, args.batch_size, exact_tokens=True)
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        via = generate(model, tok, convs, args.max_new_tokens, args.batch_size, exact_tokens=True, via_generate=True)
        t_via = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = [generate(model, tok, [c], args.max_new_tokens, 1, exact_tokens=True)[0] for c in convs]
        t_single = time.perf_counter() - t0
        assert sum(g.tokens for g in batched) == sum(g.tokens for g in single) == new
        hf[dtype] = {"batched": batched, "t_batched": t_batched, "t_single": t_single, "t_via": t_via,
                     "same": sum(b.ids == s.ids for b, s in zip(batched, single)),
                     "same_via": sum(b.ids == v.ids for b, v in zip(batched, via))}
        print(f"  hf {dtype}: batched {t_batched:.2f} s, batched by generate {t_via:.2f} s, "
              f"one at a time {t_single:.2f} s", flush=True)
        del model
    # FLOPs count each prompt's tokens (prefill) plus the new ones
    tokens = sum(len(encode(tok, c)) for c in convs) + new
    vllm = _vllm_runs(args, path, dtypes, convs) if "vllm" in args.engines.split(",") else {}

    print(f"{'engine':<7}{'dtype':<10}{'mode':<20}{'seconds':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}")

    def row(engine: str, dtype: str, mode: str, secs: float) -> None:
        flops, share = share_of_peak(params, tokens, secs, peaks[dtype])
        print(f"{engine:<7}{dtype:<10}{mode:<20}{secs:>9.2f}{new / secs:>10.1f}{flops / 1e9:>9.1f}{share:>9.1%}")

    for dtype, r in hf.items():
        row("hf", dtype, "one at a time", r["t_single"])
        row("hf", dtype, f"generate ({args.batch_size})", r["t_via"])
        row("hf", dtype, f"batched ({args.batch_size})", r["t_batched"])
    for dtype, v in vllm.items():
        row("vllm", dtype, "one call", v["seconds"])
    for dtype, r in hf.items():
        print(f"{dtype}: batched vs one at a time {r['t_single'] / r['t_batched']:.2f}x; "
              f"identical outputs {r['same']}/{len(convs)}; decode loop vs transformers generate, batched, "
              f"{r['t_via'] / r['t_batched']:.2f}x, identical {r['same_via']}/{len(convs)}")
    if {"float32", "bfloat16"} <= hf.keys():
        f, b = hf["float32"], hf["bfloat16"]
        same = sum(x.ids == y.ids for x, y in zip(f["batched"], b["batched"]))
        print(f"bfloat16 vs float32 (float32 time / bfloat16 time): batched {f['t_batched'] / b['t_batched']:.2f}x, "
              f"one at a time {f['t_single'] / b['t_single']:.2f}x; batched tokens equal {same}/{len(convs)}")
        if {"float32", "bfloat16"} <= vllm.keys():
            print(f"bfloat16 vs float32, vllm: {vllm['float32']['seconds'] / vllm['bfloat16']['seconds']:.2f}x")
    for dtype, v in vllm.items():
        if dtype in hf:
            same = sum(a.text == b.text for a, b in zip(hf[dtype]["batched"], v["outs"]))
            print(f"vllm / hf batched time, {dtype}: {v['seconds'] / hf[dtype]['t_batched']:.2f}x "
                  f"(vllm load {v['load_s']:.1f} s not included); texts equal to hf batched {same}/{len(convs)}")
    if vllm:
        print(f"auto on this CPU picks {choose('auto', 'cpu')[0]}")


def _vllm_runs(args, path: str, dtypes: list[str], convs: list) -> dict[str, dict]:
    """Per dtype: the same greedy work on the vLLM engine in one call, after a warm-up; load timed apart."""
    runs = {}
    for dtype in dtypes:
        t0 = time.perf_counter()
        engine = load_engine(path, backend="vllm", dtype=dtype, device="cpu", kv_cache_gib=2,
                             gen_batch_size=len(convs))
        load_s = time.perf_counter() - t0
        try:
            engine.greedy(WARM_UP, 4)
            t0 = time.perf_counter()
            outs = engine.greedy(convs, args.max_new_tokens, exact_tokens=True)
            seconds = time.perf_counter() - t0
            desc = engine.describe()
        finally:
            engine.close()
        runs[dtype] = {"outs": outs, "seconds": seconds, "load_s": load_s}
        print(f"  vllm {dtype} ({engine.choice[0]}, dtype {desc.get('dtype')}): "
              f"loaded in {load_s:.1f} s, work {seconds:.2f} s", flush=True)
    return runs


if __name__ == "__main__":
    main()
