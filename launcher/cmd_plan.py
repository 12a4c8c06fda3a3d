"""`buckle plan`: memory per GPU for fine-tuning a model, and whether it fits."""
from __future__ import annotations

import argparse
import json

HELP = "estimate memory per GPU (full vs LoRA, ZeRO-2/3, offload) and whether it fits"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle plan` flags."""
    p.add_argument("--model", required=True,
                   help="llama-3-8b, llama-3-70b, embedded, a config.json or model directory, or a hub id")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per node")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpu-memory", default="80GB", help="memory of one GPU")
    p.add_argument("--cpu-memory", help="memory of one node (checked for offload if given)")
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per example")
    p.add_argument("--micro-batch", type=int, default=1, help="examples per GPU per step")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank (all linear layers)")
    p.add_argument("--no-checkpointing", action="store_true", help="without gradient checkpointing")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Run `buckle plan`."""
    from buckle.train.plan import architecture, as_dicts, parse_size, plan, serving_memory

    if args.gpus < 1 or args.nodes < 1:
        raise ValueError("--gpus and --nodes must be at least 1")
    name = args.model
    if name.lower() in ("embedded", "smollm2-135m-instruct"):
        from buckle.core.catalog.models import resolve_model
        name = resolve_model(name)
    arch = architecture(name)
    rows = plan(arch, args.gpus, parse_size(args.gpu_memory), args.nodes, args.micro_batch,
                args.seq_len, args.lora_r, not args.no_checkpointing,
                parse_size(args.cpu_memory) if args.cpu_memory else None)
    serving = serving_memory(arch, args.gpus, parse_size(args.gpu_memory))
    if args.json:
        print(json.dumps({"model": args.model, "params": arch.total_params(),
                          "lora_params": arch.lora_params(args.lora_r), "rows": as_dicts(rows),
                          "serving": as_dicts(serving)}, indent=2))
        return 0
    print(f"{args.model}: {arch.total_params() / 1e9:.2f}B params ({arch.lora_params(args.lora_r) / 1e6:.1f}M "
          f"LoRA r={args.lora_r}); {args.nodes}x{args.gpus} GPUs of {args.gpu_memory}; micro-batch "
          f"{args.micro_batch} x {args.seq_len} tokens, checkpointing {'off' if args.no_checkpointing else 'on'}")
    print(f"{'method':6} {'zero':>4} {'offload':>9} {'GPU GiB':>9} {'states':>8} {'activ.':>7} "
          f"{'CPU GiB/node':>12} {'+merge':>6}  fits")
    for r in rows:
        print(f"{r.method:6} {r.zero:>4} {r.offload:>9} {r.gpu_gib:>9.1f} {r.states_gib:>8.1f} "
              f"{r.activations_gib:>7.1f} {r.cpu_gib_per_node:>12.1f} {r.merge_cpu_gib:>6.1f}  "
              f"{'yes' if r.fits else 'no: ' + r.why}")
    print("serving (vLLM engine, bfloat16; recommended tensor_parallel_size = smallest that fits):")
    print(f"{'use':6} {'tp':>3} {'batch x len':>12} {'weights':>8} {'KV cache':>9} {'GPU GiB':>8}  fits")
    for s in serving:
        print(f"{s.use:6} {s.tp:>3} {f'{s.batch} x {s.seq_len}':>12} {s.weights_gib:>8.1f} {s.kv_cache_gib:>9.1f} "
              f"{s.gpu_gib:>8.1f}  {'yes' if s.fits else 'no'}")
    return 0
