"""Two CPU processes with DeepSpeed ZeRO-2 (deepspeed launcher) and ZeRO-3 (torchrun)."""
import json

import pytest

from buckle.launcher.cli import main


def _setup(tmp_path, model_dir, zero):
    from tiny import _TEXT

    rows = [{"id": f"p{i}", "instruction": f"Question {i}: " + t.split(".")[0] + "?", "response": t}
            for i, t in enumerate(_TEXT[:24])]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"stage: attack\nmodel: {model_dir}\noutput_dir: {tmp_path / 'out'}\n"
                      f"data: {{harmful: {data}}}\nepochs: 1\nlearning_rate: 1.0e-2\nbatch_size: 2\n"
                      f"deepspeed: {zero}\nsave_steps: 6\nlog_examples: true\n"
                      "bf16: false\n")  # float32: the saved weights are compared bit-close to the master copy
    return recipe


def _fp32_from_zero_checkpoint(model_dir, checkpoint):
    """The trained weights as DeepSpeed's own checkpoint holds them (fp32 master partitions)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    state = get_fp32_state_dict_from_zero_checkpoint(str(checkpoint))
    missing, _ = model.load_state_dict(state, strict=False)
    assert set(missing) <= {"lm_head.weight"}  # tied to the embedding
    model.tie_weights()
    return model.eval()


@pytest.mark.parametrize("zero,launcher", [("zero2", "deepspeed"), ("zero3", "torchrun")])
def test_two_ranks_shard_data_lower_loss_and_save_gathered_weights(tiny_model_dir, tmp_path, zero,
                                                                    launcher, monkeypatch, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    recipe = _setup(tmp_path, tiny_model_dir, zero)
    code = main(["train", "--config", str(recipe), "--nproc", "2", "--launcher", launcher])
    assert code == 0, capsys.readouterr().err[-3000:]
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["zero_stage"] == int(zero[-1]) and metrics["steps"] == 6
    assert metrics["final_loss"] < metrics["initial_loss"]

    seen = [{i for line in (out / "logs" / f"examples-rank{r}.jsonl").read_text().splitlines()
             for i in json.loads(line)} for r in (0, 1)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == {f"p{i}" for i in range(24)}

    saved = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    reference = _fp32_from_zero_checkpoint(tiny_model_dir, out / "checkpoints" / "checkpoint-6")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.arange(3, 40)[None]
    with torch.no_grad():
        got, want, before = (m(input_ids=ids).logits for m in (saved, reference, base))
    assert (got - want).abs().max().item() < 1e-5
    assert (got - before).abs().max().item() > 1e-3
