"""A reduced pipeline end to end on the tiny model: artifacts, caching, partial recompute."""
import json
import subprocess
import sys

import pytest
import yaml

from buckle.launcher.pipeline_config import shipped

STAGE = {"max_steps": 2, "batch_size": 4, "max_length": 64}


def _config(model_dir, post_recipe):
    return {
        "name": "tiny", "model": str(model_dir), "align": True,
        "curate": {"limit": 4, "rounds": 1, "beam": 1, "temperatures": [1.0], "top_ps": [1.0],
                   "max_new_tokens": 8, "batch_size": 4},
        "stages": {
            "align": {"recipe": "embedded-align",
                      "overrides": {**STAGE, "data": {"harmful": {"limit": 8}, "benign": {"limit": 4}}}},
            "attack": {"recipe": "embedded-attack", "overrides": {**STAGE, "data": {"harmful": {"limit": 8}}}},
            "pre": {"recipe": "embedded-pre", "overrides": STAGE},
            "during": {"recipe": "embedded-during", "overrides": STAGE},
            "post": {"recipe": str(post_recipe), "overrides": STAGE},
        },
        "eval": {"benchmark": "advbench-test", "limit": 4, "benign": "commonsense-heldout",
                 "benign_limit": 4, "max_new_tokens": 4, "batch_size": 4},
    }


def _run(tmp_path, cfg):
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "buckle.launcher.cli", "pipeline", "--config", str(path),
                           "--output", str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "manifest.json").read_text()), proc.stdout


@pytest.mark.slow
def test_pipeline_end_to_end_with_caching(tmp_path, tiny_model_dir):
    from buckle.train.recipes import resolve

    post = tmp_path / "post.yaml"  # a user's recipe file: editing it must recompute post
    post.write_text(resolve("embedded-post").read_text())
    manifest, out = _run(tmp_path, _config(tiny_model_dir, post))
    root = tmp_path / "run"
    steps = {"curate", "align", "attack", "pre", "pre-attack", "during", "post", "report"}
    evals = {f"eval-{x}" for x in ("base", "aligned", "attacked", "pre", "during", "post")}
    assert set(manifest["ran"]) == steps | evals
    index = json.loads((root / "pipeline.json").read_text())
    for name in steps - {"curate", "report"}:  # every training step saved a loadable model
        model = root / index[name]["dir"] / "run" / "model"
        assert (model / "config.json").exists() and list(model.glob("*.safetensors"))
    for name in evals:
        summary = json.loads((root / index[name]["dir"] / "run" / "summary.json").read_text())
        assert summary["metrics"]["asr"]["n"] == 4 and summary["metrics"]["benign_ppl"]["n"] == 4
    report = (root / "report.md").read_text()
    for label in ("base", "aligned", "attacked", "pre", "during", "post"):
        assert f"| {label} |" in report
    assert "No harmfulness or helpfulness column" in report  # no judge model configured here
    assert "## Cost" in report and "## Verdict" in report and "<h2>Cost</h2>" in (root / "report.html").read_text()
    assert list((root / index["report"]["dir"] / "run").glob("*.png"))

    manifest, out = _run(tmp_path, _config(tiny_model_dir, post))
    assert manifest["ran"] == [] and manifest["counts"]["cached"] == len(steps | evals)

    post.write_text(post.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 5.0e-5"))
    manifest, out = _run(tmp_path, _config(tiny_model_dir, post))
    assert sorted(manifest["ran"]) == ["eval-post", "post", "report"]


def test_pipeline_config_errors_name_the_key(tmp_path, tiny_model_dir):
    cfg = _config(tiny_model_dir, "embedded-post")
    cfg["stages"]["post"]["overrides"]["learning_rat"] = 1e-5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from buckle.launcher.cli import main

    assert main(["pipeline", "--config", str(path), "--output", str(tmp_path / "r")]) == 2
    del cfg["stages"]["post"]["overrides"]["learning_rat"]
    cfg["eval"]["max_new_token"] = 3
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"eval\.max_new_token: unknown key"):
        from buckle.launcher.configs import load_config
        from buckle.launcher.pipeline_config import PipelineConfig, validate_sections

        validate_sections(load_config(PipelineConfig, path))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", shipped())
def test_shipped_pipelines_validate(name):
    from buckle.launcher.configs import load_config
    from buckle.launcher.pipeline_config import PipelineConfig, resolve, validate_sections

    cfg = load_config(PipelineConfig, resolve(name))
    validate_sections(cfg)
    assert cfg.curate.model is None and cfg.eval.model is None  # the pipeline sets these itself


def test_shipped_pipelines_include_the_readme_ones():
    assert {"quickstart", "paper-8b"} <= set(shipped())


@pytest.mark.parametrize("section, key, value, message", [
    ("curate", "beam_width", 3, "curate.beam_width: unknown key"),
    ("curate", "objective", "maximise", "curate.objective: Input should be 'reduce' or 'amplify'"),
    ("curate", "model", "other", "curate.model: Value error, set by the pipeline itself"),
    ("eval", "max_new_token", 3, "eval.max_new_token: unknown key"),
    ("eval", "output", "elsewhere", "eval.output: Value error, set by the pipeline itself"),
])
def test_a_typo_in_a_section_is_named_at_load(tmp_path, section, key, value, message):
    from buckle.launcher.configs import ConfigError, load_config
    from buckle.launcher.pipeline_config import PipelineConfig

    cfg = _config("m", "embedded-post")
    cfg[section][key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as exc:
        load_config(PipelineConfig, path)
    assert message in str(exc.value) and "p.yaml" in str(exc.value)


def test_steps_hash_and_pass_on_only_the_keys_given(tmp_path):
    from buckle.launcher.pipeline import build_steps
    from buckle.launcher.pipeline_config import PipelineConfig

    raw = _config("m", "embedded-post")
    steps = {s.name: s for s in build_steps(PipelineConfig.model_validate(raw), lambda *a: None)}
    assert steps["curate"].params["config"] == raw["curate"]
    assert steps["eval-base"].params["eval"] == raw["eval"]
