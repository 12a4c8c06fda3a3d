"""GPU check: train a ~1B Llama (built from a config, random weights) for 50 steps on one GPU
with DeepSpeed ZeRO-2 through `train.run.train`, and print tokens/s and MFU; where ray is
installed, the same job again as a one-worker Ray Train job (skipped, saying so, elsewhere).

Needs no hub and no cache: the tokenizer is the tests' offline BPE, the data the
embedded commonsense corpus. MFU = 6 x params x tokens/s over the matmul peak
measured on this GPU in the run's dtype (also shown against a nominal peak you pass).

    python bench/gpu_train_check.py                       # ~1B, 50 steps, ZeRO-2, bf16
    python bench/gpu_train_check.py --model embedded      # a model name/path instead
    python bench/gpu_train_check.py --nominal-tflops 989  # H100/H200 dense bf16
    python bench/gpu_train_check.py --bf16 false --model DIR  # float32, same model, side by side
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONE_B = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
             num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)


def build_model(out: Path) -> Path:
    """A random ~1.1B Llama (TinyLlama shape) with the tests' offline tokenizer, saved in bf16."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny import build_tiny_model

    # only the tokenizer of the tiny model is kept; its weights stay in another directory
    AutoTokenizer.from_pretrained(build_tiny_model(out.with_name(out.name + "-tiny"))).save_pretrained(out)
    with torch.device("cuda"):
        model = LlamaForCausalLM(LlamaConfig(**ONE_B, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                             tie_word_embeddings=False)).to(torch.bfloat16)
    model.save_pretrained(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model path or 'embedded' (default: build a ~1B model)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--deepspeed", default="zero2")
    parser.add_argument("--bf16", default="auto", choices=("auto", "true", "false"),
                        help="the recipe's bf16 setting (auto: bfloat16 where the GPU has it); false trains in float32")
    parser.add_argument("--nominal-tflops", type=float, default=989.0, help="datasheet dense bf16 peak")
    parser.add_argument("--out", help="output directory (default: a temp dir)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_train_check: no CUDA GPU here; nothing to check", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from buckle.train.config import TrainConfig
    from buckle.train.run import train

    out = Path(args.out or tempfile.mkdtemp(prefix="buckle-gpu-"))
    t0 = time.perf_counter()
    if args.model == "embedded":
        from buckle.core.catalog.models import resolve_model
        model = resolve_model("embedded")
    else:
        model = args.model or str(build_model(out / "base"))
    print(f"model ready in {time.perf_counter() - t0:.0f} s: {model}", flush=True)
    cfg = TrainConfig(stage="attack", model=model, output_dir=str(out / "run"),
                      data={"harmful": str(ROOT / "curation" / "data" / "commonsense.jsonl")},
                      max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                      learning_rate=1e-5, deepspeed=args.deepspeed, logging_steps=10,
                      bf16=args.bf16 if args.bf16 == "auto" else args.bf16 == "true")
    m = train(cfg)
    from peak import matmul_peak, param_count  # bench/ is on sys.path when run as a script

    params = param_count(str(model))
    dtype = "bfloat16" if m["bf16"] else "float32"
    peak = matmul_peak(dtype, n=8192, reps=10, device="cuda")
    flops = 6 * params * m["tokens_per_s"]
    result = {"gpu": torch.cuda.get_device_name(0), "params": params, "steps": m["steps"],
              "zero_stage": m["zero_stage"], "dtype": dtype, "tokens": m["tokens"], "tokens_per_s": round(m["tokens_per_s"], 1),
              "train_s": m["train_s"], "loss": [m["initial_loss"], m["final_loss"]],
              "measured_peak_tflops": round(peak / 1e12, 1), "mfu_measured_peak": round(flops / peak, 3),
              "mfu_nominal_bf16_peak": round(flops / (args.nominal_tflops * 1e12), 3) if m["bf16"] else None,
              "max_memory_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)}
    result["ray_train"] = ray_train_check(cfg.model_copy(update={"output_dir": str(out / "run-ray")}), m)
    print(json.dumps(result, indent=2))
    return 0


def ray_train_check(cfg, plain: dict) -> dict:
    """The same job as a one-GPU Ray Train job, when ray is installed here (skipped otherwise)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        print("ray is not installed here: Ray Train path skipped", flush=True)
        return {"skipped": "ray not installed"}
    from buckle.curation.executors.ray_cluster import ray_session
    from buckle.train.ray_train import fit_on_ray

    with ray_session():
        m = fit_on_ray(cfg, workers=1, use_gpu=True)
    return {"tokens_per_s": round(m["tokens_per_s"], 1), "steps": m["steps"],
            "ratio_to_plain": round(m["tokens_per_s"] / plain["tokens_per_s"], 3)}


if __name__ == "__main__":
    sys.exit(main())
