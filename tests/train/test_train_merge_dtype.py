"""`lora.merge_dtype`: a float32 base trained in bfloat16 is merged into a bfloat16 model, half the disk,
with the same weights as the float32 merge rounded once."""
import json

import pytest

from buckle.train.merge import finish_merge, merge_shards


def _adapter(base_dir, out):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False,
                                     task_type="CAUSAL_LM")).save_pretrained(out)


def _merge(base_dir, adapter, target, dtype):
    from transformers import AutoTokenizer

    plan = [merge_shards(str(base_dir), adapter, target, rank, 2, 10_000, dtype=dtype) for rank in (0, 1)][0]
    finish_merge(str(base_dir), target, plan, AutoTokenizer.from_pretrained(base_dir), dtype)
    return sum(p.stat().st_size for p in target.glob("model*.safetensors"))


def test_a_bfloat16_merge_equals_the_float32_merge_rounded_once(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    _adapter(tiny_model_dir, tmp_path / "adapter")
    full = _merge(tiny_model_dir, tmp_path / "adapter", tmp_path / "fp32", None)
    half = _merge(tiny_model_dir, tmp_path / "adapter", tmp_path / "bf16", "bfloat16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    assert json.loads((tmp_path / "fp32" / "config.json").read_text())["dtype"] == "float32"  # left as it was
    assert 0.45 < half / full < 0.55
    want = AutoModelForCausalLM.from_pretrained(tmp_path / "fp32").state_dict()
    got = AutoModelForCausalLM.from_pretrained(tmp_path / "bf16", dtype="auto").state_dict()
    assert {t.dtype for t in got.values()} == {torch.bfloat16}  # `auto` reads the recorded dtype
    assert all(torch.equal(got[k], want[k].to(torch.bfloat16)) for k in want)


def test_merge_dtype_is_a_typed_lora_key():
    from pydantic import ValidationError

    from buckle.train.config import LoraSpec

    assert LoraSpec().merge_dtype is None and LoraSpec(merge_dtype="bfloat16").merge_dtype == "bfloat16"
    with pytest.raises(ValidationError, match="merge_dtype"):
        LoraSpec(merge_dtype="int8")
