"""The LoRA merge tensor by tensor over ranks (train.merge) against peft's in-memory merge_and_unload."""
import json

import pytest

from buckle.train.merge import finish_merge, merge_shards, shard_plan, base_files


def _adapter(base_dir, out, **lora):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                  init_lora_weights=False, task_type="CAUSAL_LM", **lora))
    peft_model.save_pretrained(out)
    return peft_model


def _merged_by_peft(base_dir, adapter_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(adapter_dir)).merge_and_unload()


@pytest.mark.parametrize("rslora", [False, True])
def test_two_ranks_merge_shard_by_shard_like_peft(tiny_model_dir, tmp_path, rslora):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _adapter(tiny_model_dir, tmp_path / "adapter", use_rslora=rslora)
    target, budget = tmp_path / "model", 10_000  # a few tensors per shard: many shards
    plans = [merge_shards(str(tiny_model_dir), tmp_path / "adapter", target, rank, 2, budget) for rank in (0, 1)]
    assert plans[0] == plans[1] and len(plans[0]) > 3
    finish_merge(str(tiny_model_dir), target, plans[0], AutoTokenizer.from_pretrained(tiny_model_dir))
    index = json.loads((target / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == len(plans[0])
    mine = AutoModelForCausalLM.from_pretrained(target).state_dict()
    theirs = _merged_by_peft(tiny_model_dir, tmp_path / "adapter").state_dict()
    assert mine.keys() == theirs.keys()
    changed = [k for k in mine if (mine[k] - AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()[k])
               .abs().max() > 1e-4]
    assert len(changed) == 14  # 7 linears x 2 layers carry the adapter
    assert max((mine[k] - theirs[k]).abs().max().item() for k in mine) < 1e-6


def test_one_shard_keeps_the_single_file_layout(tiny_model_dir, tmp_path):
    _adapter(tiny_model_dir, tmp_path / "adapter")
    shards = merge_shards(str(tiny_model_dir), tmp_path / "adapter", tmp_path / "model")
    assert len(shards) == 1 and [p.name for p in (tmp_path / "model").iterdir()] == ["model.safetensors"]
    assert sum(map(len, shards)) == len(base_files(str(tiny_model_dir)))


def test_dora_is_left_to_peft(tiny_model_dir, tmp_path):
    _adapter(tiny_model_dir, tmp_path / "adapter", use_dora=True)
    assert merge_shards(str(tiny_model_dir), tmp_path / "adapter", tmp_path / "model") is None
    assert not (tmp_path / "model").exists()


def test_a_tensor_above_the_budget_is_a_shard_of_its_own(tiny_model_dir):
    files = base_files(str(tiny_model_dir))
    shards = shard_plan(files, 1)
    assert all(len(s) == 1 for s in shards) and len(shards) == len(files)


def test_plan_counts_the_merge_on_top_of_the_training_host_memory():
    from buckle.train.plan import GIB, architecture, merge_host_bytes, parse_size, plan

    arch = architecture("llama-3-70b")
    per_node = merge_host_bytes(arch, 8)
    # 8 ranks, each: the 2 GiB embedding as its own shard + 8 bytes x the 235M-param MLP linear
    assert per_node == 8 * (2 * 128256 * 8192 + 8 * 8192 * 28672)
    assert per_node < 0.25 * 2 * arch.total_params()  # the whole 16-bit base was 131 GiB on one process
    rows = {(r.method, r.zero, r.offload): r for r in plan(arch, 8, parse_size("80GB"), nodes=2,
                                                            cpu_memory=parse_size("30GB"))}
    row = rows[("lora", 3, "optimizer")]
    assert row.merge_cpu_gib == round(per_node / GIB, 1) and not row.fits
    assert row.why == (f"host {row.cpu_gib_per_node + row.merge_cpu_gib:.1f} GiB/node (training "
                       f"{row.cpu_gib_per_node:.1f} + LoRA merge {row.merge_cpu_gib:.1f}) > 30.0 GiB")
    assert rows[("full", 3, "optimizer")].merge_cpu_gib == 0.0
    kept = {(r.method, r.zero, r.offload): r for r in plan(arch, 8, parse_size("80GB"), nodes=2,
                                                            cpu_memory=parse_size("30GB"), lora_merge=False)}
    assert kept[("lora", 3, "optimizer")].fits and kept[("lora", 3, "optimizer")].why == ""
