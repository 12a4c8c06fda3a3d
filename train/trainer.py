"""The HF Trainer around a recipe: distributed setup, model (full or LoRA), save.

The same code runs in one process, under torchrun or under the deepspeed
launcher: it reads RANK/WORLD_SIZE from the environment and nothing else.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from buckle.core.procs import free_port
from buckle.train.data import ListDataset, PadCollator


def world_size() -> int:
    """Processes in this job (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 without a launcher)."""
    return int(os.environ.get("RANK", "0"))


def has_cuda() -> bool:
    """Whether a CUDA device is usable."""
    import torch

    return torch.cuda.is_available()


def init_distributed(use_deepspeed: bool) -> None:
    """Start the process group before TrainingArguments exist.

    DeepSpeed on CPU needs gloo and an initialised group first, else the
    Trainer's batch-size checks fail or every rank trains on all data. A bare
    single process gets rank variables so no MPI discovery is attempted.
    """
    if not has_cuda():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if not use_deepspeed:
        return
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                       ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    import deepspeed

    deepspeed.init_distributed(dist_backend="nccl" if has_cuda() else "gloo")


def shutdown_distributed() -> None:
    """Leave the process group once every rank is done.

    A gloo group still alive at interpreter exit can abort a rank in its C++
    teardown ("terminate called without an active exception") after the work is saved.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def use_bf16(setting: Any) -> bool:
    """bf16 'auto' means: on a GPU that supports it, or a CPU with AMX / avx512_bf16 (buckle.core.precision)."""
    if setting == "auto":
        from buckle.core.precision import resolve_dtype

        return resolve_dtype("auto", "cuda" if has_cuda() else "cpu")[0] == "bfloat16"
    if setting:
        from buckle.core.precision import warn_if_emulated

        warn_if_emulated("bfloat16", "cuda" if has_cuda() else "cpu")
    return bool(setting)


def training_args(cfg: Any, out: Path, ds_config: str | None) -> Any:
    """TrainingArguments of a recipe (the one place batch, accumulation and clipping live)."""
    from transformers import TrainingArguments

    cpu = not has_cuda()
    # transformers 5 renamed gradient_checkpointing; older releases know only the old name
    ckpt = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"
    kwargs = {ckpt: cfg.gradient_checkpointing,
              f"{ckpt}_kwargs": {"use_reentrant": False} if cfg.gradient_checkpointing else None}
    return TrainingArguments(**kwargs,
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps, learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.logging_steps, save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500, save_total_limit=cfg.save_total_limit,
        seed=cfg.seed, data_seed=cfg.seed, bf16=use_bf16(cfg.bf16), use_cpu=cpu,
        deepspeed=ds_config, ddp_backend="gloo" if cpu and world_size() > 1 else None,
        report_to="none", remove_unused_columns=False, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        # BUCKLE_PROGRESS: `buckle pipeline` reads the bar from the step's log
        disable_tqdm=not (sys.stderr.isatty() or os.environ.get("BUCKLE_PROGRESS") == "1"),
        save_only_model=False)


def load_model(cfg: Any, bf16: bool, ds_config: str | None) -> Any:
    """The model to train: full weights, or the base wrapped with LoRA adapters."""
    import torch
    from transformers import AutoModelForCausalLM

    # DeepSpeed keeps its own fp32 master copy; plain Trainer runs fp32 weights with autocast
    dtype = torch.bfloat16 if bf16 and (ds_config or cfg.lora) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
        model = get_peft_model(model, lcfg)
    return model


class Meter(TrainerCallback):
    """Times training and counts input tokens seen in this invocation (a resume counts anew)."""

    t0 = seconds = 0.0
    tokens0 = tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen or 0

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.t0
        self.tokens = (state.num_input_tokens_seen or 0) - self.tokens0


def fit(cfg: Any, tok: Any, examples: list[dict], callbacks: list | None = None,
        wrap: Any = None, resume_from: str | None = None) -> dict:
    """Train on encoded examples and save the final model under OUTPUT/model.

    Args:
        wrap: applied to the built Trainer (Ray Train's `prepare_trainer`).
        resume_from: a checkpoint to resume from (Ray's); else the newest under
            OUTPUT/checkpoints when the recipe says resume.

    Returns:
        steps, initial/final loss, tokens, tokens_per_s, train_s, model_dir, world_size,
        resized (the world-size change of a resume, or None).
    """
    from transformers import Trainer

    from buckle.train.deepspeed import resolve
    from buckle.train.resize import WorldRecord, prepare_resume

    out = Path(cfg.output_dir)
    ds_config = str(resolve(cfg.deepspeed)) if cfg.deepspeed else None
    init_distributed(bool(ds_config))
    resume = resume_from or (last_checkpoint(out / "checkpoints") if cfg.resume else None)
    load_from, resized = resume, None
    if resume:  # another world size: keep the global batch, load ZeRO state as universal
        load_from, cfg, ds_config, resized = prepare_resume(resume, cfg, ds_config, world_size(), rank())
    args = training_args(cfg, out, ds_config)  # before the model: ZeRO-3 partitions at load
    model = load_model(cfg, args.bf16, ds_config)
    log = out / "logs" / f"examples-rank{rank()}.jsonl" if cfg.log_examples else None
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
    meter = Meter()
    stage = json.loads(Path(ds_config).read_text()).get("zero_optimization", {}).get("stage") if ds_config else None
    record = WorldRecord(world_size(), rank(), stage)  # before callbacks that copy the checkpoint
    trainer = Trainer(model=model, args=args, train_dataset=ListDataset(examples),
                      data_collator=PadCollator(tok.pad_token_id, log), processing_class=tok,
                      callbacks=[meter, record] + list(callbacks or []))
    if wrap:
        trainer = wrap(trainer)
    trainer.train(resume_from_checkpoint=load_from)
    model_dir = save(trainer, cfg, tok, out)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "initial_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None, "tokens": int(meter.tokens),
            "tokens_per_s": meter.tokens / meter.seconds if meter.seconds else 0.0,
            "train_s": round(meter.seconds, 3), "model_dir": str(model_dir),
            "resumed_from": resume, "resized": resized, "grad_accum": cfg.grad_accum, "world_size": world_size(),
            "zero_stage": zero_stage(trainer), "bf16": bool(args.bf16), "log_history": trainer.state.log_history}


def zero_stage(trainer: Any) -> int | None:
    """The ZeRO stage of the DeepSpeed engine that trained, or None without DeepSpeed."""
    engine = trainer.model_wrapped
    return engine.zero_optimization_stage() if type(engine).__name__ == "DeepSpeedEngine" else None


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (its trainer_state.json is written last), if any."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def save(trainer: Any, cfg: Any, tok: Any, out: Path) -> Path:
    """Save HF safetensors (ZeRO-3 gathered); LoRA saves the adapter and merges it if asked."""
    if not cfg.lora:
        trainer.save_model(str(out / "model"))
        return out / "model"
    trainer.save_model(str(out / "adapter"))
    if not cfg.lora.merge:
        return out / "adapter"
    merge_lora(cfg.model, out / "adapter", out / "model", tok, trainer.args.process_index,
               trainer.args.world_size, trainer.accelerator.wait_for_everyone, dtype=cfg.lora.merge_dtype)
    return out / "model"


def merge_lora(base: str, adapter: Path, target: Path, tok: Any, rank: int = 0, world: int = 1,
               barrier: Any = None, dtype: str | None = None) -> None:
    """Fold a saved adapter into its base model and save the result as a plain model.

    Every rank merges its share of the output shards tensor by tensor (train.merge),
    so no process holds the whole base; an adapter beyond plain LoRA is merged by
    peft on rank 0 alone, loading the base whole. Every rank calls this.

    Args:
        dtype: the merged weights' dtype (e.g. "bfloat16"); None keeps the base's.
    """
    from buckle.train.merge import clear_weights, finish_merge, merge_shards

    barrier = barrier or (lambda: None)
    if rank == 0:
        clear_weights(target)
    barrier()  # the adapter is saved and the old weights are gone
    shards = merge_shards(base, adapter, target, rank, world, dtype=dtype)
    barrier()
    if rank == 0:
        if shards is None:
            _merge_in_memory(base, adapter, target, tok, dtype)
        else:
            finish_merge(base, target, shards, tok, dtype)
    barrier()


def _merge_in_memory(base: str, adapter: Path, target: Path, tok: Any, dtype: str | None = None) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    print(f"LoRA merge: {adapter} is more than plain LoRA; peft merges it with the whole base in memory",
          file=sys.stderr, flush=True)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype or "auto")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(target))
    tok.save_pretrained(str(target))
