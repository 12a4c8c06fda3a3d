"""The 70B recipes' shape at toy size: LoRA under ZeRO-3 with optimizer offload on 2 CPU ranks, then the
shard-by-shard merge, on a tiny random Qwen2 (the 1.5B quickstart's architecture), checked against
base + scale x B @ A computed here from the saved files."""
import json

import pytest

from buckle.launcher.cli import main

pytestmark = pytest.mark.slow  # two DeepSpeed ranks; the first run also JIT-compiles DeepSpeed's CPU Adam (~70 s)


def _tiny_qwen2(out):
    """A random Qwen2ForCausalLM (q/k/v biases, grouped KV heads, untied head like the converted 1.5B),
    with the tiny chat tokenizer of tests/tiny.py; built from a config, no download."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from tiny import build_tiny_model

    build_tiny_model(out)  # the tokenizer; the Llama weights are replaced below
    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(out)
    return out


def _recipe_70b_shaped(tmp_path, model_dir):
    """paper-70b's attack stage (its recipe with the pipeline's overrides), sizes shrunk to the toy model."""
    from buckle.core.config import load_config
    from buckle.launcher.pipeline.config import PipelineConfig, recipe_content, resolve

    from tiny import _TEXT

    recipe = recipe_content(load_config(PipelineConfig, resolve("paper-70b")), "attack")
    assert recipe["lora"]["merge"] and recipe["deepspeed"] == "zero3-offload-optimizer"  # what is exercised
    rows = [{"id": f"p{i}", "instruction": t.split(".")[0] + "?", "response": t} for i, t in enumerate(_TEXT[:16])]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # kept from the 70B recipe: LoRA r/alpha/dropout on all linears, merge, ZeRO-3 + offload, bf16 auto,
    # gradient checkpointing, cosine schedule; shrunk: data, steps, batch, length, no checkpoints
    recipe.update(model=str(model_dir), output_dir=str(tmp_path / "out"), data={"harmful": str(data)},
                  max_steps=4, batch_size=2, grad_accum=2, max_length=64, learning_rate=5e-3, save_steps=None,
                  logging_steps=1)
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path, recipe


def _expected_merge(base_dir, adapter_dir):
    """base + (alpha / r) x B @ A for every adapted weight, from the safetensors files alone (no peft)."""
    import torch
    from safetensors.torch import load_file

    base = load_file(str(base_dir / "model.safetensors"))
    adapter = load_file(str(adapter_dir / "adapter_model.safetensors"))
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    expected, adapted = dict(base), []
    for key in adapter:
        if ".lora_A." not in key:
            continue
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        a, b = adapter[key].double(), adapter[key.replace("lora_A", "lora_B")].double()
        assert a.shape == (cfg["r"], base[name].shape[1]) and b.shape == (base[name].shape[0], cfg["r"]), key
        expected[name] = (base[name].double() + scale * (b @ a)).to(base[name].dtype)
        adapted.append(name)
        assert b.abs().max() > 0, f"{key}: lora_B still zero, the adapter did not train"
    return base, expected, adapted


def test_lora_zero3_offload_on_two_cpu_ranks_merges_shard_by_shard(tmp_path, monkeypatch, capsys):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    monkeypatch.setenv("BUCKLE_MERGE_SHARD_BYTES", "40000")  # small shards: both ranks write some
    base_dir = _tiny_qwen2(tmp_path / "qwen2-tiny")
    path, recipe = _recipe_70b_shaped(tmp_path, base_dir)
    code = main(["train", "--config", str(path), "--nproc", "2", "--launcher", "deepspeed"])
    assert code == 0, capsys.readouterr().err[-3000:]
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["zero_stage"] == 3 and metrics["steps"] == 4
    assert metrics["final_loss"] < metrics["initial_loss"]

    adapter_cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (adapter_cfg["r"], adapter_cfg["lora_alpha"]) == (recipe["lora"]["r"], recipe["lora"]["alpha"])
    index = json.loads((out / "model" / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 4 and all((out / "model" / s).is_file() for s in shards)  # i % 2: both ranks wrote

    base, expected, adapted = _expected_merge(base_dir, out / "adapter")
    assert len(adapted) == 14  # q, k, v, o, gate, up, down in each of 2 layers: under ZeRO-3 every one saved whole
    merged = AutoModelForCausalLM.from_pretrained(out / "model")
    assert type(merged).__name__ == "Qwen2ForCausalLM"
    got = merged.state_dict()
    assert set(got) == set(expected)
    worst = max((got[k].double() - expected[k].double()).abs().max().item() for k in expected)
    assert worst < 1e-6, worst
    moved = min((got[k].double() - base[k].double()).abs().max().item() for k in adapted)
    assert moved > 1e-5  # each adapted weight differs from the base: the merge is not a copy
