"""`buckle train`: one defense stage (pre/during/post), the attack, or align, as a fine-tuning job."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from buckle.train.stages import RULES, STAGES

HELP = "fine-tune one stage (align, pre, during, post, attack) from a recipe"
DATA_FLAGS = (("--harmful", "harmful", "harmful prompts (align) or pairs (attack)"),
              ("--benign", "benign", "benign instruction/response pairs"),
              ("--curated", "curated", "curated output (DIR with curated/part-*.parquet, or a file)"),
              ("--user-data", "user", "the user's fine-tuning data (during)"))
# flag dest -> recipe key, for plain overrides
SCALARS = {"model": "model", "output": "output_dir", "epochs": "epochs", "max_steps": "max_steps",
           "lr": "learning_rate", "batch_size": "batch_size", "grad_accum": "grad_accum",
           "max_length": "max_length", "deepspeed": "deepspeed", "save_steps": "save_steps",
           "seed": "seed", "bf16": "bf16"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register `buckle train` flags (flags override the recipe's values)."""
    p.add_argument("--stage", choices=STAGES, help="stage to run (default: the recipe's)")
    p.add_argument("--config", help="recipe name (e.g. embedded-align) or YAML file; "
                   "default: embedded-<stage>")
    p.add_argument("--model", help="model: embedded, a local directory or a hub id")
    p.add_argument("--output", help="run directory (model/, checkpoints/, metrics.json, manifest.json)")
    for flag, _, text in DATA_FLAGS:
        p.add_argument(flag, metavar="SOURCE", help=f"{text}: named set, file, directory or dataset id")
    p.add_argument("--limit", type=int, help="use at most N examples of the stage's main data")
    p.add_argument("--curated-ratio", type=float, help="during: curated examples per user example")
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides epochs)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int, help="per-device batch size")
    p.add_argument("--grad-accum", type=int, help="gradient accumulation steps")
    p.add_argument("--max-length", type=int, help="max tokens per example")
    p.add_argument("--bf16", choices=["auto", "true", "false"])
    p.add_argument("--seed", type=int)
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--no-merge", action="store_true", help="with LoRA: keep the adapter unmerged")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None)
    p.add_argument("--deepspeed", metavar="NAME", help="zero2, zero3, zero3-offload, zero3-offload-optimizer or a JSON file")
    p.add_argument("--save-steps", type=int, help="checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--nproc", type=int, default=1,
                   help="training ranks: local processes, or Ray Train workers in all (GPUs, or CPU ranks)")
    p.add_argument("--launcher", choices=["torchrun", "deepspeed"], default="torchrun",
                   help="how to start --nproc > 1 processes")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this machine (torchrun/deepspeed); ray: a Ray Train job on a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster (HOST:PORT or auto; executor ray; default: "
                   "$RAY_ADDRESS, else start a private local one)")
    p.add_argument("--nodes", type=int, help="machines to spread the ranks over (Ray or a --profile)")
    p.add_argument("--max-failures", type=int, default=1,
                   help="executor ray: restarts from the last checkpoint after a lost worker")
    p.add_argument("--profile", help="submit this training as a job on a cluster profile (Ray: a Ray Train "
                   "job; Slurm: srun + torchrun; KubeRay: a RayJob manifest) and wait for it")


def recipe_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe's YAML mapping with the flags applied on top."""
    from buckle.core.config import ConfigError, read_yaml
    from buckle.train.recipes import resolve

    if not args.config and not args.stage:
        raise ValueError("give --stage or --config (a recipe name or file)")
    path = resolve(args.config or f"embedded-{args.stage}")
    data = read_yaml(path)
    if args.stage and data.get("stage", args.stage) != args.stage:
        raise ConfigError(f"recipe '{path}' is for stage '{data.get('stage')}', not '{args.stage}'")
    data.setdefault("stage", args.stage)
    for dest, key in SCALARS.items():
        value = getattr(args, dest, None)
        if value is not None:
            data[key] = {"true": True, "false": False}.get(value, value) if dest == "bf16" else value
    _data_overrides(data, args)
    if args.lora or args.no_merge:
        lora = data.get("lora") or {}
        data["lora"] = {**lora, "merge": not args.no_merge} if args.no_merge else lora
    for flag, key in (("gradient_checkpointing", "gradient_checkpointing"), ("resume", "resume")):
        if getattr(args, flag):
            data[key] = True
    return data


def _data_overrides(data: dict, args: argparse.Namespace) -> None:
    section = data.setdefault("data", {})
    for _, role, _ in DATA_FLAGS:
        value = getattr(args, role if role != "user" else "user_data")
        if value:
            section[role] = {"source": value}
    if args.curated_ratio is not None:
        section["curated_ratio"] = args.curated_ratio
    if args.limit is not None:
        stage = RULES.get(data.get("stage"))
        main = stage.main_data if stage else "curated"
        spec = section.get(main)
        spec = {"source": spec} if isinstance(spec, str) else dict(spec or {})
        section[main] = {**spec, "limit": args.limit}


def resolve_config(cfg: Any) -> Any:
    """Turn model and data-set names into paths (absolute, so any process can use them)."""
    from buckle.core.catalog.data import is_named, materialize
    from buckle.core.catalog.models import resolve_model

    update: dict[str, Any] = {"model": resolve_model(cfg.model),
                              "output_dir": str(Path(cfg.output_dir).expanduser().resolve())}
    data = cfg.data.model_copy()
    for role, spec in cfg.sources().items():
        source = str(materialize(spec.source)) if is_named(spec.source) else spec.source
        if Path(source).expanduser().exists():
            source = str(Path(source).expanduser().resolve())
        setattr(data, role, spec.model_copy(update={"source": source}))
    update["data"] = data
    return cfg.model_copy(update=update)


def load_train_config(args: argparse.Namespace) -> Any:
    """The validated recipe with flags applied (names not yet resolved)."""
    from pydantic import ValidationError

    from buckle.core.config import ConfigError, format_validation_error
    from buckle.train.config import TrainConfig

    data = recipe_dict(args)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, args.config or f"embedded-{args.stage}")) from None


def run(args: argparse.Namespace) -> int:
    """Run `buckle train`."""
    from buckle.core.manifest import RunDir
    from buckle.train.launch import run_launched
    from buckle.train.run import prepare, train

    if args.profile:
        return submit_training(resolve_config(load_train_config(args)), args)
    args.nodes = args.nodes or 1
    if args.nproc < 1 or args.nodes < 1:
        raise ValueError("--nproc and --nodes must be at least 1")
    if args.nodes > args.nproc:
        raise ValueError(f"--nodes {args.nodes} with --nproc {args.nproc}: --nproc counts ranks in all, "
                         "at least one per node")
    if args.nodes > 1 and args.executor != "ray":
        raise ValueError("--nodes > 1 needs --executor ray (a Ray cluster) or --profile (a cluster profile)")
    cfg = resolve_config(load_train_config(args))
    prepared = prepare(cfg, world=args.nproc)  # bad input fails here, before training starts
    run_dir = RunDir(cfg.output_dir, "train", cfg.model_dump())
    if args.executor == "ray":
        from buckle.curation.executors.ray_cluster import ray_session
        from buckle.train.ray_train import fit_on_ray

        with ray_session(args.ray_address):
            metrics = fit_on_ray(cfg, workers=args.nproc, nodes=args.nodes, max_failures=args.max_failures)
    elif args.nproc == 1:
        metrics = train(cfg, prepared=prepared)
    else:
        path = Path(cfg.output_dir) / "train-config.json"
        path.write_text(json.dumps(cfg.model_dump(), indent=2))
        run_launched(path, args.nproc, args.launcher)
        metrics = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
    counts = {"examples": metrics["examples"], "steps": metrics["steps"], "tokens": metrics["tokens"],
              **metrics["counts"]}
    run_dir.finish(counts=counts, timings={"train_s": metrics["train_s"]}, metrics=metrics)
    if metrics.get("resized"):
        r = metrics["resized"]
        print(f"resumed a checkpoint of {r['from_world']} ranks on {r['to_world']}: grad_accum "
              f"{r['grad_accum']} keeps the global batch")
    print(f"{cfg.stage}: {metrics['steps']} steps on {metrics['examples']} examples, loss "
          f"{_fmt(metrics['initial_loss'])} -> {_fmt(metrics['final_loss'])}, "
          f"{metrics['tokens_per_s']:.0f} tokens/s, {metrics['wall_s']:.0f} s; model: {metrics['model_dir']}")
    return 0


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def submit_training(cfg: Any, args: argparse.Namespace) -> int:
    """`buckle train --profile P`: submit this training as a job on the profile's cluster and wait for it.

    The resolved recipe is written beside the run (the output dir is storage the
    cluster shares), and the job runs `buckle train --config` on it: on a Ray or
    KubeRay profile as a Ray Train job over `--nodes` (see cluster.command), on
    Slurm under srun + torchrun. A KubeRay profile that does not apply its
    manifest only renders it.
    """
    import os

    from buckle.cluster import jobs
    from buckle.cluster.profiles import load_profile
    from buckle.cluster.states import run_job, succeeded

    prof = load_profile(args.profile)
    nodes = args.nodes or prof.defaults.nodes
    if args.nproc % nodes:
        raise ValueError(f"--nproc {args.nproc} ranks do not split evenly over --nodes {nodes}")
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipe = out / "train-config.json"
    recipe.write_text(json.dumps(cfg.model_dump(), indent=2))
    spec = jobs.build_spec(prof, ["buckle", "train", "--config", str(recipe)], name=f"train-{cfg.stage}",
                           nodes=nodes, tasks_per_node=args.nproc // nodes, workdir=os.getcwd())
    def waiting(rec: Any) -> None:
        print(f"job {rec.id} on {prof.name}: {nodes} node(s); waiting (buckle jobs logs {rec.id})", flush=True)
    rec, state, output = run_job(spec, prof, poll_s=2.0, on_submit=waiting)
    if state == "RENDERED":
        print(f"job {rec.id}: rendered {rec.info.get('manifest')} (apply it with kubectl)")
        return 0
    print(output, end="")
    if not succeeded(state):
        print(f"train: job {rec.id} ended {state}", file=sys.stderr)
        return 1
    return 0
