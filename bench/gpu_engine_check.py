"""GPU check: output tokens/s and scoring speed of the hf engine per dtype (and vllm) on a Llama-3-8B-shaped model.

No hub is reachable on a lent GPU machine, and decoding speed does not depend on
the weight values, so the model is built from a config (bfloat16, random
weights, saved once under --workdir) with a small byte-level tokenizer whose
chat template is the test suite's. Each engine gets the same prompts and
decodes exactly --max-new-tokens tokens per prompt (end-of-turn ignored). The
hf engine runs once per dtype of --dtypes (default auto,float32: what `dtype:
auto` picks on this GPU, then float32 side by side) and then scores its own
generations (response NLL, the perplexity path of curation), with each path's
model FLOP/s as a share of this GPU's measured matmul peak for that dtype.
Reference: DataTrove reports about 6.3k output tokens/s per H100 for an 8B
model on vLLM.

    python bench/gpu_engine_check.py [--prompts 256] [--max-new-tokens 128] [--layers 32]
        [--dtypes auto,float32] [--engines hf,vllm]

Exits 0 with a one-line reason where there is no CUDA device; where vLLM is not
installed only the hf engine is measured.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

LLAMA3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                 rope_theta=500000.0, tie_word_embeddings=False)


def build(workdir: Path, layers: int) -> Path:
    """Save the random-weight 8B-shaped model plus the tiny test tokenizer (ids fit any vocab)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = workdir / f"llama3-8b-shape-{layers}l"
    if (out / "config.json").exists():
        return out
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny import build_tiny_model  # the suite's offline tokenizer and chat template

    tiny = build_tiny_model(workdir / "tiny-tok")
    cfg = LlamaConfig(**{**LLAMA3_8B, "num_hidden_layers": layers}, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    del model
    torch.cuda.empty_cache()
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            (out / f.name).write_bytes(f.read_bytes())
    return out


def measure(engine, convs, n_new: int) -> dict:
    engine.greedy(convs[:4], 8, exact_tokens=True)  # warm-up (graph capture, allocator)
    t0 = time.perf_counter()
    outs = engine.greedy(convs, n_new, exact_tokens=True)
    secs = time.perf_counter() - t0
    tokens = sum(g.tokens for g in outs)
    return {"seconds": round(secs, 2), "tokens": tokens, "tokens_per_s": round(tokens / secs, 1)}, outs


def measure_scoring(engine, convs, outs) -> dict:
    """Response NLL of the engine's own generations: the forward curation ranks candidates with."""
    import torch

    prompts = [c[0]["content"] for c in convs]
    responses = [g.text for g in outs]
    engine.response_nll(prompts[:4], responses[:4])  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    nll = engine.response_nll(prompts, responses)
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    scored = sum(n for _, n in nll)
    return {"seconds": round(secs, 2), "response_tokens": scored, "texts_per_s": round(len(nll) / secs, 1)}


def prompt_tokens(engine, convs) -> int:
    return sum(len(engine.prompt_ids(c[0]["content"])) for c in convs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (32 = Llama-3-8B)")
    parser.add_argument("--hf-batch-size", type=int, default=64)
    parser.add_argument("--workdir", default="/tmp/buckle-gpu-engine")
    parser.add_argument("--engines", default="hf,vllm")
    parser.add_argument("--dtypes", default="auto,float32", help="hf engine dtypes, run in this order")
    parser.add_argument("--score-batch-size", type=int, default=32)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skip: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("skip: no CUDA device")
        return 0
    from buckle.core.engine.hf import HFEngine

    path = build(Path(args.workdir), args.layers)
    convs = [[{"role": "user", "content": f"Question {k}: how do plants turn light into sugar?"}]
             for k in range(args.prompts)]
    result = {"device": torch.cuda.get_device_name(0), "layers": args.layers, "prompts": args.prompts,
              "max_new_tokens": args.max_new_tokens}
    if "hf" in args.engines:
        from peak import matmul_peak, param_count, share_of_peak

        params = param_count(str(path))
        result["params"] = params
        for dtype in args.dtypes.split(","):
            hf = HFEngine.load(str(path), dtype, "cuda", gen_batch_size=args.hf_batch_size,
                               score_batch_size=args.score_batch_size)
            got = hf.describe()
            row, outs = measure(hf, convs, args.max_new_tokens)
            row["scoring"] = measure_scoring(hf, convs, outs)
            peak = matmul_peak(got["dtype"], n=8192, reps=5, device="cuda")
            # decoding: 2 x params per new token; scoring: per prompt + response token processed
            row["gen_share_of_peak"] = round(share_of_peak(params, row["tokens"], row["seconds"], peak)[1], 4)
            scored = prompt_tokens(hf, convs) + row["scoring"]["response_tokens"]
            row["scoring"]["share_of_peak"] = round(share_of_peak(params, scored, row["scoring"]["seconds"], peak)[1], 4)
            row.update(asked=dtype, dtype=got["dtype"], dtype_reason=got["dtype_reason"],
                       peak_tflops=round(peak / 1e12, 1))
            result[f"hf_{dtype}"] = row
            print("hf", dtype, row, flush=True)
            del hf
            torch.cuda.empty_cache()
        rows = [result[f"hf_{d}"] for d in args.dtypes.split(",")]
        fp32 = next((r for r in rows if r["dtype"] == "float32"), None)
        bf16 = next((r for r in rows if r["dtype"] == "bfloat16"), None)
        if fp32 and bf16:
            result["bfloat16_speedup"] = {
                "generation": round(fp32["seconds"] / bf16["seconds"], 2),
                "scoring": round(fp32["scoring"]["seconds"] / bf16["scoring"]["seconds"], 2)}
            print("bfloat16 vs float32:", result["bfloat16_speedup"], flush=True)
    if "vllm" in args.engines:
        if importlib.util.find_spec("vllm") is None:
            result["vllm"] = "not installed on this machine"
        else:
            from buckle.core.engine.vllm_backend import VLLMEngine

            engine = VLLMEngine(str(path), "bfloat16", "cuda", max_length=1024)
            result["vllm"] = measure(engine, convs, args.max_new_tokens)[0]
            engine.close()
        print("vllm", result["vllm"], flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
