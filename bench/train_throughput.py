"""Training throughput: `buckle train` vs a plain HF Trainer loop, float32 vs bfloat16, FLOP/s vs matmul peak.

Both sides train the same model on the same encoded examples with the same
batch size and step count, in one process, in each dtype of --dtypes
(bfloat16: the Trainer's bf16 path, autocast over float32 weights, on both
sides); the (dtype, side) runs go in one order in even repetitions and in
reverse in odd ones, and the best run of each is compared. Training FLOPs are
counted as 6 x parameters x tokens (forward + backward of every weight
matmul, the tied output projection included), against the peak of a
2048x2048 matmul in the same dtype measured here on the same threads.

    python bench/train_throughput.py                  # the embedded model, CPU, float32 and bfloat16
    python bench/train_throughput.py --steps 20 --batch-size 8 --reps 3 [--dtypes bfloat16]
    python bench/train_throughput.py --ray --nproc 2  # Ray Train vs torchrun, same 2-rank job

Prints the matmul peak of float32 and bfloat16 first, then per (dtype, side)
tokens/s (non-padding tokens over the training loop) and training FLOP/s as a
share of that dtype's peak; then buckle/plain per dtype (target >= 0.9) and
the bfloat16/float32 tokens/s ratio per side.

With --ray the same job (recipe, ranks, steps) runs under the torchrun launcher
and as a Ray Train job on a private local Ray instance, alternating; tokens/s
is the trainer's own count over its training loop on both sides (start-up of
processes or Ray workers excluded), and the best run of each is compared.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from peak import DTYPES, param_count, print_peaks, share_of_peak


def timer():
    """A callback timing the training loop (train begin to end), the same for both sides."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        seconds = 0.0

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            self.seconds = time.perf_counter() - self.t0

    return Timer()


def plain_hf(model_path: str, examples: list[dict], steps: int, batch: int, lr: float, out: str,
             bf16: bool = False) -> tuple[int, float]:
    """The baseline: AutoModel (float32) + DataCollatorForSeq2Seq + Trainer with library defaults, bf16 as asked."""
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainingArguments)

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    feats = [{k: ex[k] for k in ("input_ids", "attention_mask", "labels")} for ex in examples]
    base = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    per_batch: list[int] = []

    def collate(batch):
        out_batch = base(batch)
        per_batch.append(int(out_batch["attention_mask"].sum()))
        return out_batch

    args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch, max_steps=steps,
                             learning_rate=lr, report_to="none", save_strategy="no", use_cpu=True, bf16=bf16,
                             logging_steps=1, seed=42, disable_tqdm=True)
    t = timer()
    Trainer(model=model, args=args, train_dataset=feats, data_collator=collate, callbacks=[t]).train()
    # the dataloader may fetch one batch ahead; count only the batches trained on
    return sum(per_batch[:steps]), t.seconds


def ray_vs_torchrun(cfg, nproc: int, reps: int, tmp: Path) -> dict:
    """Best tokens/s of the same job under torchrun and under Ray Train, `reps` runs each."""
    from buckle.curation.executors.ray_cluster import ray_session
    from buckle.train.launch import run_launched
    from buckle.train.ray_train import fit_on_ray

    runs: dict[str, list[float]] = {"torchrun": [], "ray": []}
    with ray_session(num_cpus=nproc):  # one instance for all Ray runs; idle while torchrun runs
        for rep in range(reps):
            for side in (("torchrun", "ray") if rep % 2 == 0 else ("ray", "torchrun")):
                side_cfg = cfg.model_copy(update={"output_dir": str(tmp / f"{side}-{rep}")})
                if side == "torchrun":
                    Path(side_cfg.output_dir).mkdir(parents=True, exist_ok=True)
                    path = Path(side_cfg.output_dir) / "train-config.json"
                    path.write_text(json.dumps(side_cfg.model_dump()))
                    run_launched(path, nproc)
                    m = json.loads((Path(side_cfg.output_dir) / "metrics.json").read_text())
                else:
                    m = fit_on_ray(side_cfg, workers=nproc)
                runs[side].append(m["tokens_per_s"])
            print(f"rep {rep}: torchrun {runs['torchrun'][-1]:.0f} tok/s, Ray Train {runs['ray'][-1]:.0f} tok/s",
                  flush=True)
    best_t, best_r = max(runs["torchrun"]), max(runs["ray"])
    print(f"torchrun ({nproc} ranks)  : {best_t:9.0f} tokens/s")
    print(f"Ray Train ({nproc} workers): {best_r:9.0f} tokens/s   ratio {best_r / best_t:.3f} (target >= 0.9)")
    return {"nproc": nproc, "torchrun_tokens_per_s": round(best_t, 1), "ray_tokens_per_s": round(best_r, 1),
            "ratio": round(best_r / best_t, 3), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--dtypes", default="float32,bfloat16", help="float32 and/or bfloat16 (Trainer bf16)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--ray", action="store_true", help="compare Ray Train with torchrun instead")
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the --ray comparison")
    parser.add_argument("--deepspeed", help="DeepSpeed config of the --ray comparison (default: none)")
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")
    if set(dtypes) - set(DTYPES):
        parser.error(f"--dtypes: {args.dtypes!r}; known: {', '.join(DTYPES)}")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)

    from buckle.core.catalog.data import materialize
    from buckle.core.catalog.models import resolve_model
    from buckle.train.config import TrainConfig
    from buckle.train.run import prepare, train

    model = resolve_model(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="buckle-bench-"))
    cfg = TrainConfig(stage="attack", model=model, output_dir=str(tmp / "buckle"),
                      data={"harmful": str(materialize("commonsense-train"))}, max_steps=args.steps,
                      batch_size=args.batch_size, max_length=args.max_length, logging_steps=args.steps)
    if args.ray:
        cfg = cfg.model_copy(update={"deepspeed": args.deepspeed})
        prepare(cfg, world=args.nproc)
        result = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size,
                  "deepspeed": args.deepspeed, **ray_vs_torchrun(cfg, args.nproc, args.reps, tmp)}
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return
    peaks = print_peaks(DTYPES)
    prepared = prepare(cfg)
    examples = prepared[1]
    # the plain loop sees the examples in the sampler's order too: same seed, same batches
    seq = [(d, side) for d in dtypes for side in ("plain", "buckle")]
    runs: dict[tuple[str, str], list[tuple[int, float]]] = {key: [] for key in seq}
    for rep in range(args.reps):
        # reverse the order in odd repetitions, so no (dtype, side) always runs in the same slot
        for dtype, side in (seq if rep % 2 == 0 else seq[::-1]):
            bf16 = dtype == "bfloat16"
            if side == "plain":
                tokens, secs = plain_hf(model, examples, args.steps, args.batch_size, cfg.learning_rate,
                                        str(tmp / "plain"), bf16=bf16)
            else:
                t = timer()
                tokens, secs = train(cfg.model_copy(update={"bf16": bf16}), callbacks=[t],
                                     prepared=prepared)["tokens"], t.seconds
            runs[dtype, side].append((tokens, secs))
        print(f"rep {rep}: " + ", ".join(f"{d} {s} {r[-1][0] / r[-1][1]:.0f}" for (d, s), r in runs.items())
              + " tok/s", flush=True)

    import torch

    n_params = param_count(model)
    best = {key: max(r, key=lambda run: run[0] / run[1]) for key, r in runs.items()}  # (tokens, seconds)
    result = {"model": args.model, "params": n_params, "threads": torch.get_num_threads(), "steps": args.steps,
              "batch_size": args.batch_size, "matmul_peak_flops_per_s": peaks, "dtypes": {}}
    print(f"{'dtype':<10}{'side':<18}{'tokens/s':>9}{'GFLOP/s':>9}{'of peak':>9}")
    for (dtype, side), (tokens, secs) in best.items():
        tps = _rate((tokens, secs))
        flops, share = share_of_peak(n_params, tokens, secs, peaks[dtype], training=True)
        print(f"{dtype:<10}{'plain HF Trainer' if side == 'plain' else 'buckle train':<18}{tps:>9.0f}"
              f"{flops / 1e9:>9.1f}{share:>9.1%}")
        result["dtypes"].setdefault(dtype, {})[side] = {"tokens_per_s": round(tps, 1), "train_flops_per_s": flops,
                                                        "fraction_of_peak": round(share, 3)}
    for dtype in dtypes:
        ratio = _rate(best[dtype, "buckle"]) / _rate(best[dtype, "plain"])
        result["dtypes"][dtype]["ratio"] = round(ratio, 3)
        print(f"buckle / plain HF, {dtype}: {ratio:.3f} (target >= 0.9)")
    if {"float32", "bfloat16"} <= set(dtypes):
        for side in ("plain", "buckle"):
            ratio = _rate(best["bfloat16", side]) / _rate(best["float32", side])
            result[f"bf16_vs_fp32_{side}"] = round(ratio, 3)
            print(f"bfloat16 vs float32 tokens/s, {'plain HF Trainer' if side == 'plain' else 'buckle train'}: "
                  f"{ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


def _rate(run: tuple[int, float]) -> float:
    """Tokens/s of a (tokens, seconds) run."""
    return run[0] / run[1]


if __name__ == "__main__":
    main()
