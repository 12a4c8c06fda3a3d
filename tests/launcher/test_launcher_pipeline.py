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
                   "max_new_tokens": 8, "batch_size": 4, "faithful": False},  # the tiny model writes noise
        "stages": {
            "align": {"recipe": "embedded-align",
                      "overrides": {**STAGE, "data": {"harmful": {"limit": 8}, "benign": {"limit": 4}}}},
            "attack": {"recipe": "embedded-attack", "overrides": {**STAGE, "data": {
                "harmful": {"source": "harmful-pairs-train", "limit": 8}}}},
            "pre": {"recipe": "embedded-pre", "overrides": STAGE},
            "during": {"recipe": "embedded-during", "overrides": STAGE},
            "post": {"recipe": str(post_recipe), "overrides": STAGE},
        },
        "eval": {"benchmarks": ["advbench-test", "strongreject-small"], "limit": 4, "benign": "commonsense-heldout",
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
    twins = {"pre-uncurated", "pre-uncurated-attack", "during-uncurated", "post-uncurated"}
    steps = {"curate", "contamination", "judges", "align", "attack", "pre", "pre-attack", "during", "post",
             "report"} | twins
    labels = ("base", "aligned", "attacked", "pre", "during", "post", "pre-uncurated", "during-uncurated",
              "post-uncurated")
    evals = {f"eval-{x}" for x in labels} | {f"eval-{x}-strongreject-small" for x in labels}
    assert set(manifest["ran"]) == steps | evals
    index = json.loads((root / "pipeline.json").read_text())
    for name in steps - {"curate", "contamination", "judges", "report"}:  # every training step saved a model
        model = root / index[name]["dir"] / "run" / "model"
        assert (model / "config.json").exists() and list(model.glob("*.safetensors"))
    for name in evals:
        summary = json.loads((root / index[name]["dir"] / "run" / "summary.json").read_text())
        assert summary["metrics"]["asr"]["n"] == 4
        first = "strongreject" not in name  # benign (and harmful) references ride on the first benchmark
        assert ("benign_ppl" in summary["metrics"]) == first
    twin = yaml.safe_load((root / index["post-uncurated"]["dir"] / "recipe.yaml").read_text())
    cur = yaml.safe_load((root / index["post"]["dir"] / "recipe.yaml").read_text())
    assert twin["data"]["curated"]["response_column"] == "original"  # the control: same texts, uncurated
    assert {**twin["data"]["curated"], "response_column": None} == {**cur["data"]["curated"], "response_column": None}
    assert {k: v for k, v in twin.items() if k not in ("data", "output_dir")} == \
        {k: v for k, v in cur.items() if k not in ("data", "output_dir")}
    report = (root / "report.md").read_text()
    (tmp_path / "report-example.md").write_text(report)
    for label in labels:
        assert f"| {label} |" in report
    for bench in ("advbench-test", "strongreject-small"):
        assert f"### {bench}: attack success by the keyword judge: accuracy" in report
        assert f"post on {bench}: " in report and "its uncurated twin" in report
    assert "McNemar curated vs uncurated" in report and "p=" in report
    assert "## Contamination" in report and "| advbench-train (align harmful) | advbench-test |" in report
    assert "## Judges against human labels" in report and "| keyword | pyrit objective |" in report
    import pyarrow.parquet as pq  # the pairs section shows changed texts, else says there are none

    curated = [r for f in (root / index["curate"]["dir"] / "run" / "curated").glob("*.parquet")
               for r in pq.read_table(f).to_pylist()]
    changed = [r for r in curated if r["curated"] and r["curated"] != r["original"]]
    assert "## Curated pairs (random, seeded)" in report
    assert ("- before: " in report) == bool(changed)
    assert ("No curated text differs from its original." in report) == (not changed)
    assert "No harmfulness or helpfulness column" in report  # no judge model configured here
    assert "| post-uncurated | curate, post-uncurated |" in report  # a twin's cost is its own steps
    assert "## Cost" in report and "## Verdict" in report and "<h2>Cost</h2>" in (root / "report.html").read_text()
    assert list((root / index["report"]["dir"] / "run").glob("*.png"))

    manifest, out = _run(tmp_path, _config(tiny_model_dir, post))
    assert manifest["ran"] == [] and manifest["counts"]["cached"] == len(steps | evals)

    post.write_text(post.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 5.0e-5"))
    manifest, out = _run(tmp_path, _config(tiny_model_dir, post))
    assert sorted(manifest["ran"]) == ["eval-post", "eval-post-strongreject-small", "eval-post-uncurated",
                                       "eval-post-uncurated-strongreject-small", "post", "post-uncurated", "report"]


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
    assert {"quickstart", "quickstart-full", "paper-8b", "sweep-dev"} <= set(shipped())


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
    given = {k: v for k, v in raw["eval"].items() if k != "benchmarks"}
    assert steps["eval-base"].params["eval"] == given and steps["eval-base"].params["benchmark"] == "advbench-test"
    second = steps["eval-base-strongreject-small"].params
    assert second["benchmark"] == "strongreject-small" and "benign" not in second["eval"]


def test_twins_and_seeds_are_steps_of_their_own():
    from buckle.launcher.pipeline import build_steps, defense_groups
    from buckle.launcher.pipeline_config import PipelineConfig

    raw = {**_config("m", "embedded-post"), "seeds": [1, 2], "defenses": ["during", "post"]}
    cfg = PipelineConfig.model_validate(raw)
    steps = {s.name: s for s in build_steps(cfg, lambda *a: None)}
    for name in ("post-s1", "post-s2", "post-uncurated-s1", "post-uncurated-s2", "during-uncurated-s2"):
        assert name in steps and f"eval-{name}" in steps
    assert steps["post-uncurated-s1"].params["uncurated"] is True and "uncurated" not in steps["post-s1"].params
    assert steps["post-s2"].params["seed"] == 2
    # every training and eval step waits for the contamination gate; only evals read (and hash) it
    assert all("contamination" in s.deps + s.after for n, s in steps.items()
               if n not in ("curate", "contamination", "judges"))
    assert "contamination" in steps["eval-post-s1"].deps and "contamination" not in steps["post-s1"].deps
    assert defense_groups(cfg)["post"] == {"curated": ["post-s1", "post-s2"],
                                           "uncurated": ["post-uncurated-s1", "post-uncurated-s2"]}
    raw["controls"] = False
    names = {s.name for s in build_steps(PipelineConfig.model_validate(raw), lambda *a: None)}
    assert not any("uncurated" in n for n in names)


def test_sweep_variants_evaluate_on_dev_only(tmp_path):
    from buckle.launcher.configs import ConfigError, load_config
    from buckle.launcher.pipeline_config import PipelineConfig, resolve
    from buckle.launcher.pipeline_sweep import variants

    cfg = load_config(PipelineConfig, resolve("sweep-dev"))
    got = dict(variants(cfg))
    assert len(got) >= 5 and got["post, amplify"].curate.objective == "amplify"
    assert got["during, reduce, ratio 1"].defenses == ["during"]
    cfg.eval.benchmark = "advbench-test"
    with pytest.raises(ConfigError, match="dev split only"):
        variants(cfg)
