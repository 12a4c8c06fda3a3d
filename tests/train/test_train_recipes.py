"""Every shipped recipe and DeepSpeed config loads; bad recipes name the key."""
import json

import pytest

from buckle.launcher.cli import main
from buckle.core.config import ConfigError, load_config
from buckle.train import deepspeed as ds_configs
from buckle.train import recipes
from buckle.train.config import STAGES, TrainConfig


@pytest.mark.parametrize("name", recipes.names())
def test_shipped_recipe_validates(name):
    cfg = load_config(TrainConfig, recipes.resolve(name))
    assert name.endswith(cfg.stage)
    assert cfg.deepspeed is None or ds_configs.resolve(cfg.deepspeed).is_file()


def test_every_stage_has_a_recipe_per_model_size():
    names = set(recipes.names())
    for model in ("embedded", "llama3-8b", "llama3-70b"):
        assert {f"{model}-{s}" for s in STAGES} <= names


@pytest.mark.parametrize("name", ["zero2", "zero3", "zero3-offload", "zero3-offload-optimizer"])
def test_deepspeed_configs_leave_batch_and_clipping_to_the_trainer(name):
    conf = json.loads(ds_configs.resolve(name).read_text())
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
                "gradient_clipping"):
        assert conf[key] == "auto"
    assert conf["zero_optimization"]["stage"] == int(name[4])
    if name.startswith("zero3"):
        assert conf["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_unknown_key_and_stage_requirements(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("stage: attack\ndata: {harmful: x.jsonl}\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat: unknown key"):
        load_config(TrainConfig, bad)
    with pytest.raises(ValueError, match="stage 'during' needs data.user"):
        TrainConfig(stage="during", data={"curated": "c"})
    with pytest.raises(ValueError, match="stage 'pre' does not use data.harmful"):
        TrainConfig(stage="pre", data={"curated": "c", "harmful": "h"})


def test_cli_rejects_unknown_deepspeed_config_and_stage_mismatch(capsys, tmp_path):
    assert main(["train", "--stage", "attack", "--deepspeed", "zero9", "--model", "x",
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "deepspeed config 'zero9' not found" in err
    assert main(["train", "--stage", "align", "--config", "embedded-attack"]) == 2
    assert "is for stage 'attack', not 'align'" in capsys.readouterr().err
