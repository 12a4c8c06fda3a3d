"""`train(cfg)`: check the inputs, fine-tune one stage, write metrics.json.

Also the entry point that launchers start on every rank:
`python -m buckle.train.run CONFIG` (plain), `torchrun --nproc_per_node N -m buckle.train.run CONFIG`,
`deepspeed --num_gpus N --module train.run CONFIG`. CONFIG is a recipe whose
model and data are paths or ids (what `buckle train` writes as train-config.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from buckle.core.manifest import check_writable
from buckle.train.config import TrainConfig
from buckle.train.data import build_mix, encode_all

# Used when a model has no chat template (base models): assistant turns end with eos.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{{ '### assistant:\\n' + m['content'] + eos_token + '\\n\\n' }}"
    "{% else %}{{ '### ' + m['role'] + ':\\n' + m['content'] + '\\n\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}")


def load_tokenizer(model: str, chat_template: str | None = None) -> Any:
    """The model's tokenizer with a pad token and a chat template."""
    from transformers import AutoTokenizer

    if not Path(model).expanduser().exists() and (model.count("/") != 1 or model.startswith((".", "/", "~"))):
        raise FileNotFoundError(f"model '{model}' not found: no such directory (give another model, "
                                "or run the stage that writes it first)")
    try:
        tok = AutoTokenizer.from_pretrained(model)
    except OSError as exc:
        raise FileNotFoundError(f"model '{model}': cannot load its tokenizer ({exc})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if chat_template or not tok.chat_template:
        tok.chat_template = chat_template or FALLBACK_TEMPLATE
    return tok


def check_output_dir(path: str | Path) -> None:
    """Create the output directory or fail now with a clear error."""
    check_writable(Path(path), "output_dir")


def prepare(cfg: TrainConfig, world: int | None = None) -> tuple[Any, list[dict], dict[str, int]]:
    """Everything that can fail on bad input, before any model is loaded.

    Returns:
        (tokenizer, encoded examples, counts by origin plus dropped rows).
    """
    from buckle.train.deepspeed import resolve
    from buckle.train.trainer import world_size

    if cfg.deepspeed:
        resolve(cfg.deepspeed)
    check_output_dir(cfg.output_dir)
    tok = load_tokenizer(cfg.model, cfg.chat_template)
    records, counts = build_mix(cfg)
    examples, counts["too_long"] = encode_all(tok, records, cfg.system_prompt, cfg.max_length)
    if not examples:
        raise ValueError(f"stage '{cfg.stage}': no training examples left after filtering "
                         f"({counts['dropped']} rows with empty text, {counts['too_long']} with no "
                         f"response token within max_length {cfg.max_length})")
    world = world or world_size()
    if world > len(examples):
        raise ValueError(f"{world} processes but only {len(examples)} training examples: "
                         "use fewer processes or more data")
    return tok, examples, counts


def train(cfg: TrainConfig, callbacks: list | None = None, prepared: tuple | None = None,
          wrap: Any = None, resume_from: str | None = None) -> dict:
    """Fine-tune one stage and save the model under OUTPUT/model (or OUTPUT/adapter).

    Args:
        cfg: the recipe, with model and data as paths or ids.
        callbacks: extra `transformers.TrainerCallback`s.
        prepared: what `prepare(cfg)` returned, if the caller already checked the inputs.
        wrap: applied to the built Trainer (Ray Train's `prepare_trainer`).
        resume_from: a checkpoint to resume from (Ray Train's), instead of the newest one.

    Returns:
        Metrics: stage, examples, counts, steps, initial_loss, final_loss, tokens,
        tokens_per_s, train_s, wall_s, output_dir, model_dir, world_size.
    """
    from buckle.train.trainer import fit, rank

    t0 = time.perf_counter()
    tok, examples, counts = prepared or prepare(cfg)
    metrics = fit(cfg, tok, examples, callbacks, wrap=wrap, resume_from=resume_from)
    history = metrics.pop("log_history")
    metrics.update(stage=cfg.stage, examples=len(examples), counts=counts,
                   output_dir=str(cfg.output_dir), wall_s=round(time.perf_counter() - t0, 3))
    if rank() == 0:
        out = Path(cfg.output_dir)
        (out / "logs").mkdir(parents=True, exist_ok=True)
        (out / "logs" / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def load_recipe(path: str | Path) -> TrainConfig:
    """A TrainConfig from a YAML or JSON file (no name resolution).

    Raises:
        ConfigError: a missing or unreadable file, or a bad key (`config error in FILE: key: message`).
    """
    from buckle.core.config import load_config

    return load_config(TrainConfig, path)


def main(argv: list[str] | None = None) -> int:
    """Run one rank of a training job from a resolved recipe file."""
    parser = argparse.ArgumentParser(prog="python -m buckle.train.run", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="resolved recipe (YAML or JSON)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help="set by the deepspeed launcher; LOCAL_RANK is read from the environment")
    args = parser.parse_args(argv)
    from buckle.train.trainer import rank, shutdown_distributed

    try:
        metrics = train(load_recipe(args.config))
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    shutdown_distributed()
    if rank() == 0:
        print(json.dumps({k: v for k, v in metrics.items() if k != "counts"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
