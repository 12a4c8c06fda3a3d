"""Config loading: one error format, `config error in FILE: key: message`, for every loader."""
import pytest
from pydantic import BaseModel, ConfigDict

from buckle.cluster.profiles import load_profile
from buckle.core.config import ConfigError, load_config, read_yaml, validate
from buckle.train.config import TrainConfig
from buckle.train.run import load_recipe


class _Tiny(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = 1


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^config error in .*none\.yaml: file not found$"):
        read_yaml(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=r"^config error in .*bad\.yaml: not valid YAML: "):
        read_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"^config error in .*bad\.yaml: expected a mapping"):
        read_yaml(bad)


def test_bad_keys_are_named_with_their_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("size: big\ncolour: red\n")
    with pytest.raises(ConfigError, match=rf"^config error in {path}: size: .*integer.*; colour: unknown key$"):
        load_config(_Tiny, path)
    with pytest.raises(ConfigError, match=r"^config error: stages.post.colour: unknown key$"):
        validate(_Tiny, {"colour": 1}, prefix="stages.post.")
    path.write_text("tiny: {size: 2}\n")
    assert load_config(_Tiny, path, section="tiny").size == 2
    assert load_config(_Tiny, path, {"size": 5}, section="tiny").size == 5
    assert load_config(_Tiny, path, {"size": None}, section="tiny").size == 2  # an unset flag keeps the file's


def _message(call) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value)


def test_every_loader_shares_the_format(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CONFIG_DIR", str(tmp_path))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stage: attack\ndata: {harmful: x.jsonl}\nlearning_rat: 0.1\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("backend: slurm\nslurm: {partiton: gpu}\n")
    got = {
        "load_config": _message(lambda: load_config(TrainConfig, recipe)),
        "train.run.load_recipe": _message(lambda: load_recipe(recipe)),
        "cluster.load_profile": _message(lambda: load_profile(str(profile))),
    }
    assert got["load_config"] == got["train.run.load_recipe"] == f"config error in {recipe}: learning_rat: unknown key"
    assert got["cluster.load_profile"] == f"config error in {profile}: slurm.partiton: unknown key"
    missing = tmp_path / "gone.yaml"
    assert _message(lambda: load_recipe(missing)) == f"config error in {missing}: file not found"
