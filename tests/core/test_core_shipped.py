"""The one resolver for shipped files, and every place that names one uses it."""
import pytest

from buckle.cluster import profiles
from buckle.core.shipped import NotShipped, package_folder, resolve_shipped, shipped_names
from buckle.core.catalog import data
from buckle.launcher.pipeline import config as pipeline_config
from buckle.train import deepspeed, recipes


def test_name_then_path_and_the_first_folder_wins(tmp_path):
    user, pkg = tmp_path / "user", tmp_path / "pkg"
    user.mkdir(), pkg.mkdir()
    (pkg / "a.yaml").write_text("x: 1\n")
    (pkg / "b.yaml").write_text("x: 2\n")
    (user / "b.yaml").write_text("x: 3\n")
    assert shipped_names([user, pkg], ".yaml") == ["a", "b"]
    assert resolve_shipped("a", [user, pkg], ".yaml", "thing") == pkg / "a.yaml"
    assert resolve_shipped("b", [user, pkg], ".yaml", "thing") == user / "b.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("x: 4\n")
    assert resolve_shipped(str(own), [user, pkg], ".yaml", "thing") == own


def test_unknown_name_lists_the_shipped_ones(tmp_path):
    (tmp_path / "a.yaml").write_text("x: 1\n")
    with pytest.raises(NotShipped, match=r"^thing 'zz' not found; known: a \(hint\)$"):
        resolve_shipped("zz", tmp_path, ".yaml", "thing", " (hint)")
    with pytest.raises(FileNotFoundError):  # both kinds of error, for callers catching either
        resolve_shipped("zz", tmp_path, ".yaml", "thing")
    with pytest.raises(ValueError):
        resolve_shipped("zz", tmp_path, ".yaml", "thing")


@pytest.mark.parametrize("resolve,kind", [
    (recipes.resolve, "recipe"), (deepspeed.resolve, "deepspeed config"),
    (pipeline_config.resolve, "pipeline"), (profiles.load_profile, "profile"),
])
def test_every_shipped_kind_uses_it(resolve, kind, monkeypatch, tmp_path):
    monkeypatch.setenv("BUCKLE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(NotShipped, match=rf"^{kind} 'no-such' not found; known: \w"):
        resolve("no-such")


def test_package_files():
    assert deepspeed.resolve("zero3_offload").name == "zero3-offload.json"
    assert package_folder("buckle.curation", "data", "commonsense.jsonl") == data.materialize("commonsense")
    assert package_folder("buckle.curation", "data", "commonsense.jsonl").is_file()
