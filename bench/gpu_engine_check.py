"""GPU check: output tokens/s of the hf and vllm engines on a Llama-3-8B-shaped model with random weights.

No hub is reachable on a lent GPU machine, and decoding speed does not depend on
the weight values, so the model is built from a config (bfloat16, random
weights, saved once under --workdir) with a small byte-level tokenizer whose
chat template is the test suite's. Each engine gets the same prompts and
decodes exactly --max-new-tokens tokens per prompt (end-of-turn ignored).
Reference: DataTrove reports about 6.3k output tokens/s per H100 for an 8B
model on vLLM.

    python bench/gpu_engine_check.py [--prompts 256] [--max-new-tokens 128] [--layers 32]

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
    return {"seconds": round(secs, 2), "tokens": tokens, "tokens_per_s": round(tokens / secs, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (32 = Llama-3-8B)")
    parser.add_argument("--hf-batch-size", type=int, default=64)
    parser.add_argument("--workdir", default="/tmp/buckle-gpu-engine")
    parser.add_argument("--engines", default="hf,vllm")
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
        hf = HFEngine.load(str(path), "bfloat16", "cuda", gen_batch_size=args.hf_batch_size)
        result["hf"] = measure(hf, convs, args.max_new_tokens)
        print("hf", result["hf"], flush=True)
        del hf
        torch.cuda.empty_cache()
    if "vllm" in args.engines:
        if importlib.util.find_spec("vllm") is None:
            result["vllm"] = "not installed on this machine"
        else:
            from buckle.core.engine.vllm_backend import VLLMEngine

            engine = VLLMEngine(str(path), "bfloat16", "cuda", max_length=1024)
            result["vllm"] = measure(engine, convs, args.max_new_tokens)
            engine.close()
        print("vllm", result["vllm"], flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
