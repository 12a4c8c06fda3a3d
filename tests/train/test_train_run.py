"""One-process training on the tiny model: loss, saved model, LoRA, bad input."""
import json
import os

from buckle.launcher.cli import main
from buckle.train.config import TrainConfig
from buckle.train.run import train


def _pairs_file(path, n=24):
    from tiny import _TEXT

    rows = [{"id": f"p{i}", "instruction": t.split(".")[0] + "?", "response": t}
            for i, t in enumerate(_TEXT[:6] * (n // 6))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


class Probe:
    """Records the logits of the trained in-memory model on a fixed input at the end."""

    def __new__(cls, store):
        import torch
        from transformers import TrainerCallback

        class _Probe(TrainerCallback):
            def on_train_end(self, args, state, control, model=None, **kw):
                with torch.no_grad():
                    store["logits"] = model(input_ids=torch.arange(3, 40)[None]).logits

        return _Probe()


def _logits(model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(input_ids=torch.arange(3, 40)[None]).logits


def test_full_finetune_lowers_loss_and_saved_model_reloads(tiny_model_dir, tmp_path):
    cfg = TrainConfig(stage="attack", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"),
                      data={"harmful": _pairs_file(tmp_path / "h.jsonl")}, epochs=3,
                      learning_rate=1e-2, batch_size=4, bf16=False)  # float32: compared bit-close below
    seen = {}
    m = train(cfg, callbacks=[Probe(seen)])
    assert m["steps"] == 18 and m["examples"] == 24 and m["world_size"] == 1 and m["zero_stage"] is None
    assert m["final_loss"] < m["initial_loss"] - 1.0
    assert m["tokens"] > 0 and m["tokens_per_s"] > 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["steps"] == 18
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    reloaded = _logits(tmp_path / "out" / "model")
    assert (reloaded - seen["logits"]).abs().max().item() < 1e-5
    assert (reloaded - _logits(tiny_model_dir)).abs().max().item() > 1e-3


def test_lora_merge_saves_a_plain_model(tiny_model_dir, tmp_path):
    cfg = TrainConfig(stage="attack", model=str(tiny_model_dir), output_dir=str(tmp_path / "out"),
                      data={"harmful": _pairs_file(tmp_path / "h.jsonl", 12)}, epochs=2,
                      learning_rate=5e-3, batch_size=4, lora={"r": 4, "alpha": 8, "dropout": 0.0},
                      bf16=False)  # float32: the merged model is compared bit-close below
    seen = {}
    m = train(cfg, callbacks=[Probe(seen)])
    assert m["model_dir"].endswith("model")
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    assert not (tmp_path / "out" / "model" / "adapter_config.json").exists()
    reloaded = _logits(tmp_path / "out" / "model")
    assert (reloaded - seen["logits"]).abs().max().item() < 1e-4
    assert (reloaded - _logits(tiny_model_dir)).abs().max().item() > 1e-4


def _cli(args, capsys):
    code = main(["train", "--stage", "attack", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    return err


def test_bad_input_fails_before_training(tiny_model_dir, tmp_path, capsys):
    good = _pairs_file(tmp_path / "h.jsonl", 6)
    out = tmp_path / "out"
    base = ["--model", str(tiny_model_dir), "--output", str(out)]
    nocols = tmp_path / "nocols.jsonl"
    nocols.write_text(json.dumps({"prompt": "p", "answer": "a"}) + "\n")
    assert "no column 'response'" in _cli([*base, "--harmful", str(nocols)], capsys)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"instruction": "q", "response": " "}) + "\n")
    assert "no training examples left after filtering (1 rows with empty text" in \
        _cli([*base, "--harmful", str(empty)], capsys)
    assert "3 processes but only 2 training examples" in \
        _cli([*base, "--harmful", good, "--limit", "2", "--nproc", "3"], capsys)
    assert "deepspeed config 'zero4' not found" in _cli([*base, "--harmful", good, "--deepspeed", "zero4"], capsys)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is not writable" in _cli(["--model", str(tiny_model_dir), "--output", str(blocker / "o"),
                                      "--harmful", good], capsys)
    assert not (out / "model").exists() and not (out / "manifest.json").exists()


def test_cli_trains_and_writes_manifest(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--stage", "attack", "--model", str(tiny_model_dir), "--output", str(out),
                 "--harmful", _pairs_file(tmp_path / "h.jsonl", 12), "--max-steps", "3", "--batch-size", "2"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["counts"]["steps"] == 3
    assert manifest["config"]["model"] == os.path.realpath(tiny_model_dir)
    assert "attack: 3 steps on 12 examples" in capsys.readouterr().out


def test_shutdown_distributed_leaves_the_process_group():
    # a group left alive at exit made ranks abort in teardown after saving
    import torch.distributed as dist

    from buckle.core.procs import free_port
    from buckle.train.trainer import shutdown_distributed

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    assert dist.is_initialized()
    shutdown_distributed()
    assert not dist.is_initialized()
    shutdown_distributed()  # a no-op without a group


def test_bfloat16_training_loss_stays_within_ten_percent_of_float32(tiny_model_dir, tmp_path):
    """`bf16: auto` on a CPU with AMX trains in bfloat16 autocast; its loss curve follows float32's."""
    losses = {}
    for bf16 in (False, True):
        cfg = TrainConfig(stage="attack", model=str(tiny_model_dir), output_dir=str(tmp_path / f"out-{bf16}"),
                          data={"harmful": _pairs_file(tmp_path / "h.jsonl")}, epochs=2,
                          learning_rate=1e-2, batch_size=4, bf16=bf16)
        m = train(cfg)
        assert m["bf16"] is bf16 and m["steps"] == 12
        losses[bf16] = m["final_loss"]
    assert abs(losses[True] - losses[False]) <= 0.10 * losses[False], losses
