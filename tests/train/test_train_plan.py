"""`buckle plan` against DeepSpeed's own memory estimators and real parameter counts."""
import json
import os

import pytest

os.environ.setdefault("DS_ACCELERATOR", "cpu")

from buckle.train.plan import architecture, parse_size, plan, zero2_states, zero3_states  # noqa: E402


@pytest.mark.parametrize("name", ["llama-3-8b", "llama-3-70b"])
@pytest.mark.parametrize("gpus,nodes", [(1, 1), (8, 1), (8, 4)])
def test_model_states_equal_deepspeed_estimators(name, gpus, nodes):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs as ds3
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs as ds2

    arch = architecture(name)
    p, big = arch.total_params(), arch.largest_layer_params()
    for offload in (False, True):
        assert zero2_states(p, gpus, nodes, offload) == ds2(p, gpus, nodes, cpu_offload=offload)
    for opt, params in ((False, False), (True, False), (True, True)):
        want = ds3(p, big, gpus, nodes, cpu_offload=opt, cpu_offload_params=params, zero_init=True)
        assert zero3_states(p, big, gpus, nodes, opt, params) == want[:2]


def test_shipped_llama_numbers_match_transformers_parameter_counts():
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    assert architecture("llama-3-8b").total_params() == 8_030_261_248
    assert architecture("meta-llama/Meta-Llama-3-70B-Instruct").total_params() == 70_553_706_496
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(LlamaConfig(
            vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
            num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False))
    assert sum(p.numel() for p in model.parameters()) == architecture("llama-3-8b").total_params()


@pytest.mark.parametrize("tied", [True, False])
def test_counts_equal_deepspeed_model_to_params_and_peft(tmp_path, tied):
    from deepspeed.runtime.zero.stage3 import model_to_params
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied)
    cfg.save_pretrained(tmp_path)
    arch = architecture(str(tmp_path))
    model = AutoModelForCausalLM.from_config(cfg)
    assert model_to_params(model) == (arch.total_params(), arch.largest_layer_params())
    lora = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert lora.get_nb_trainable_parameters()[0] == arch.lora_params(4)


def test_fits_verdicts_for_70b_on_8x80gb():
    rows = {(r.method, r.zero, r.offload): r for r in plan(architecture("llama-3-70b"), 8, parse_size("80GB"))}
    assert not rows[("full", 3, "none")].fits  # 18 bytes x 70.6B / 8 GPUs = 148 GiB
    assert rows[("full", 3, "optimizer")].fits and rows[("lora", 3, "none")].fits
    assert not rows[("lora", 2, "none")].fits  # ZeRO-2 keeps all 16-bit weights on every GPU
    assert rows[("full", 3, "none")].states_gib == pytest.approx(
        (4 * 128256 * 8192 + 18 * 70_553_706_496 / 8) / 2 ** 30, abs=0.01)


def test_sizes_and_unknown_models():
    assert parse_size("80GB") == 80 * 2 ** 30 == parse_size("80 GiB") == parse_size("81920MB")
    with pytest.raises(ValueError, match="not like 80GB"):
        parse_size("lots")
    with pytest.raises(ValueError, match="offline names: llama-3-8b, llama-3-70b"):
        architecture("no-such-org/no-such-model")


def test_cli_table_and_json(capsys):
    from buckle.launcher.cli import main

    assert main(["plan", "--model", "llama-3-8b", "--gpus", "8", "--gpu-memory", "80GB"]) == 0
    out = capsys.readouterr().out
    assert "8.03B params" in out and out.count("\n") == 16  # 12 for training, 4 for serving
    assert main(["plan", "--model", "llama-3-70b", "--gpus", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 70_553_706_496 and len(data["rows"]) == 10
    # serving a 70B engine in bfloat16 on 80 GB GPUs: curation's batch needs tp 4, eval's tp 2
    assert [(r["use"], r["tp"], r["fits"]) for r in data["serving"]] == [("curate", 4, True), ("eval", 2, True)]
