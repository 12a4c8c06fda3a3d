"""Training throughput: `buckle train` vs a plain HF Trainer loop, and FLOP/s vs matmul peak.

Both sides train the same model on the same encoded examples with the same
batch size and step count, in one process, alternating which goes first in
each repetition; the best run of each is compared. Training FLOPs are counted as
6 x parameters x tokens (forward + backward of every weight matmul, the tied
output projection included), against the peak of a large fp32 matmul measured
here on the same threads.

    python bench/train_throughput.py                  # the embedded model, CPU
    python bench/train_throughput.py --steps 20 --batch-size 8 --reps 3
    python bench/train_throughput.py --ray --nproc 2  # Ray Train vs torchrun, same 2-rank job

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


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of an n x n fp32 matmul on this process's threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0))
    return best


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


def plain_hf(model_path: str, examples: list[dict], steps: int, batch: int, lr: float, out: str) -> tuple[int, float]:
    """The baseline: AutoModel + DataCollatorForSeq2Seq + Trainer with library defaults."""
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
                             learning_rate=lr, report_to="none", save_strategy="no", use_cpu=True,
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
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--ray", action="store_true", help="compare Ray Train with torchrun instead")
    parser.add_argument("--nproc", type=int, default=2, help="ranks of the --ray comparison")
    parser.add_argument("--deepspeed", help="DeepSpeed config of the --ray comparison (default: none)")
    args = parser.parse_args()
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
    prepared = prepare(cfg)
    examples = prepared[1]
    # the plain loop sees the examples in the sampler's order too: same seed, same batches
    buckle_runs, plain_runs = [], []
    for rep in range(args.reps):
        # alternate which side goes first, so neither always runs in the same slot
        for side in (("plain", "buckle") if rep % 2 == 0 else ("buckle", "plain")):
            if side == "plain":
                tokens, secs = plain_hf(model, examples, args.steps, args.batch_size, cfg.learning_rate,
                                        str(tmp / "plain"))
                plain_runs.append(tokens / secs)
            else:
                t = timer()
                m = train(cfg, callbacks=[t], prepared=prepared)
                buckle_runs.append(m["tokens"] / t.seconds)
        print(f"rep {rep}: plain HF {plain_runs[-1]:.0f} tok/s, buckle {buckle_runs[-1]:.0f} tok/s", flush=True)

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(
            AutoConfig.from_pretrained(model)).parameters())
    peak = matmul_peak()
    best_b, best_p = max(buckle_runs), max(plain_runs)
    achieved = 6 * n_params * best_b
    result = {"model": args.model, "params": n_params, "threads": torch.get_num_threads(),
              "steps": args.steps, "batch_size": args.batch_size, "plain_tokens_per_s": round(best_p, 1),
              "buckle_tokens_per_s": round(best_b, 1), "ratio": round(best_b / best_p, 3),
              "train_flops_per_s": achieved, "matmul_peak_flops_per_s": peak,
              "fraction_of_peak": round(achieved / peak, 3)}
    print(f"plain HF Trainer : {best_p:9.0f} tokens/s")
    print(f"buckle train     : {best_b:9.0f} tokens/s   ratio {best_b / best_p:.3f} (target >= 0.9)")
    print(f"training FLOP/s  : {achieved / 1e9:9.1f} GFLOP/s = {achieved / peak:.1%} of measured fp32 matmul "
          f"peak {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
