"""A reduced pipeline end to end on the tiny model: artifacts, caching, partial recompute."""
import json
import subprocess
import sys

import pytest
import yaml

from buckle.launcher.pipeline.config import shipped

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


def _with_baseline(cfg):
    return {**cfg, "baselines": ["safety-data"]}


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
    manifest, out = _run(tmp_path, _with_baseline(_config(tiny_model_dir, post)))
    root = tmp_path / "run"
    twins = {"pre-uncurated", "pre-uncurated-attack", "during-uncurated", "post-uncurated",
             "pre-safety-data", "pre-safety-data-attack", "during-safety-data", "post-safety-data"}
    checks = {"curate-aligned", "curate-attacked", "contamination", "judges", "report"}
    steps = {"align", "attack", "pre", "pre-attack", "during", "post"} | twins | checks
    labels = ("base", "aligned", "attacked", "pre", "during", "post", "pre-uncurated", "during-uncurated",
              "post-uncurated", "pre-safety-data", "during-safety-data", "post-safety-data")
    evals = {f"eval-{x}" for x in labels} | {f"eval-{x}-strongreject-small" for x in labels}
    assert set(manifest["ran"]) == steps | evals
    index = json.loads((root / "pipeline.json").read_text())
    for name in steps - checks:  # every training step saved a model
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
    assert cur["data"]["curated"]["source"] == str(root / index["curate-attacked"]["dir"] / "run" / "curated")
    assert {k: v for k, v in twin.items() if k not in ("data", "output_dir")} == \
        {k: v for k, v in cur.items() if k not in ("data", "output_dir")}
    base = yaml.safe_load((root / index["post-safety-data"]["dir"] / "recipe.yaml").read_text())
    # the baseline: as many refusals as post's curated texts (4: curate.limit), the same recipe otherwise
    assert base["data"]["curated"] == {"source": "advbench-train-refusals", "limit": 4, "response_column": "response"}
    assert {k: v for k, v in base.items() if k not in ("data", "output_dir")} == \
        {k: v for k, v in cur.items() if k not in ("data", "output_dir")}
    report = (root / "report.md").read_text()
    (tmp_path / "report-example.md").write_text(report)
    for label in labels:
        assert f"| {label} |" in report
    for bench in ("advbench-test", "strongreject-small"):
        assert f"### {bench}: attack success by the keyword judge: accuracy" in report
        assert f"post on {bench}: " in report and "its uncurated twin" in report
    assert "curated vs uncurated twin: p, Holm p" in report and "curated vs safety-data: p, Holm p" in report
    assert "Holm p=" in report and "Holm-adjusted p = " in report and "the safety-data baseline" in report
    assert "| advbench-train-refusals (safety-data curated) | advbench-test |" in report
    assert "## Contamination" in report and "| advbench-train (align harmful) | advbench-test |" in report
    assert "## Judges against human labels" in report and "| keyword | pyrit objective |" in report
    import pyarrow.parquet as pq  # the pairs section shows changed texts, else says there are none

    curated = [r for node in ("curate-aligned", "curate-attacked")
               for f in (root / index[node]["dir"] / "run" / "curated").glob("*.parquet")
               for r in pq.read_table(f).to_pylist()]
    changed = [r for r in curated if r["curated"] and r["curated"] != r["original"]]
    assert "## Curated pairs (random, seeded)" in report
    assert ("- before: " in report) == bool(changed)
    assert ("No curated text differs from its original." in report) == (not changed)
    assert "No harmfulness or helpfulness column" in report  # no judge model configured here
    assert "| post-uncurated | curate-attacked, post-uncurated |" in report  # a twin's cost is its own steps
    assert "Ranked by the attacked model (`curate-attacked`, for post)" in report
    # post's texts are ranked by the attacked model, pre's and during's by the aligned one
    for node, model in (("curate-attacked", "attack"), ("curate-aligned", "align")):
        conf = yaml.safe_load((root / index[node]["dir"] / "curate.yaml").read_text())
        assert conf["model"] == str(root / index[model]["dir"] / "run" / "model")
        assert json.loads((root / index[node]["dir"] / "resolved.json").read_text())["config"]["rounds"] == 1
    assert "## Cost" in report and "## Verdict" in report and "<h2>Cost</h2>" in (root / "report.html").read_text()
    assert list((root / index["report"]["dir"] / "run").glob("*.png"))

    manifest, out = _run(tmp_path, _with_baseline(_config(tiny_model_dir, post)))
    assert manifest["ran"] == [] and manifest["counts"]["cached"] == len(steps | evals)

    post.write_text(post.read_text().replace("learning_rate: 2.0e-5", "learning_rate: 5.0e-5"))
    manifest, out = _run(tmp_path, _with_baseline(_config(tiny_model_dir, post)))
    assert sorted(manifest["ran"]) == ["eval-post", "eval-post-safety-data", "eval-post-safety-data-strongreject-small",
                                       "eval-post-strongreject-small", "eval-post-uncurated",
                                       "eval-post-uncurated-strongreject-small", "post", "post-safety-data",
                                       "post-uncurated", "report"]


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
        from buckle.core.config import load_config
        from buckle.launcher.pipeline.config import PipelineConfig, validate_sections

        validate_sections(load_config(PipelineConfig, path))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", shipped())
def test_shipped_pipelines_validate(name):
    from buckle.core.config import load_config
    from buckle.launcher.pipeline.config import PipelineConfig, resolve, validate_sections

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
    from buckle.core.config import ConfigError, load_config
    from buckle.launcher.pipeline.config import PipelineConfig

    cfg = _config("m", "embedded-post")
    cfg[section][key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as exc:
        load_config(PipelineConfig, path)
    assert message in str(exc.value) and "p.yaml" in str(exc.value)


def test_steps_hash_the_resolved_config_defaults_included(tmp_path):
    from buckle.curation.config import CurateConfig
    from buckle.eval.config import EvalConfig
    from buckle.launcher.pipeline.build import build_steps
    from buckle.launcher.pipeline.config import PipelineConfig

    raw = _config("m", "embedded-post")
    steps = {s.name: s for s in build_steps(PipelineConfig.model_validate(raw), lambda *a: None)}
    # the attacked model (a node, named until it runs) ranks post's texts; defaults are filled in
    assert steps["curate-attacked"].params["config"] == CurateConfig(**raw["curate"], model="<attack>").model_dump()
    assert steps["curate-aligned"].params["config"]["model"] == "<align>"
    assert steps["curate-aligned"].params["config"]["tolerance"] == CurateConfig().tolerance  # a default
    first = steps["eval-base"].params
    given = {k: v for k, v in raw["eval"].items() if k != "benchmarks"}
    resolved = EvalConfig(**given, benchmark="advbench-test", model="m", output="o").model_dump()
    assert first["eval"] == {k: v for k, v in resolved.items() if k not in ("model", "output", "label",
                                                                             "benchmark", "benchmarks")}
    assert first["benchmark"] == "advbench-test" and first["eval"]["judge_concurrency"] == 4
    second = steps["eval-base-strongreject-small"].params
    assert second["benchmark"] == "strongreject-small" and "benign" not in second["eval"]
    assert steps["post"].params["recipe"]["warmup_ratio"] == 0.0  # the recipe's defaults too


def test_each_defense_is_ranked_by_the_model_it_trains():
    from buckle.launcher.pipeline.config import PipelineConfig
    from buckle.launcher.pipeline.plan import build_plan

    plan = build_plan(PipelineConfig.model_validate(_config("m", "embedded-post")))
    by = {d: g.curate for d, g in plan.defenses.items()}
    assert by["post"].scorer is plan.row("attacked").model and by["post"].name == "curate-attacked"
    assert by["pre"] is by["during"] and by["pre"].scorer is plan.row("aligned").model  # shared: one node
    assert [n.name for n in plan.curates] == ["curate-aligned", "curate-attacked"]
    twin = plan.row("post-uncurated").model
    from buckle.eval.verdicts import UNCURATED

    assert twin.curated is by["post"] and twin.variant is UNCURATED and plan.row("post").model.variant is None
    assert plan.row("pre").model.name == "pre-attack" and plan.row("pre").model.start.name == "pre"
    plain = build_plan(PipelineConfig.model_validate({**_config("m", "embedded-post"), "align": False,
                                                      "defenses": ["pre"]}))
    assert [(n.name, n.scorer) for n in plain.curates] == [("curate-aligned", None)]  # the given model
    assert plain.to_dict()["rows"][0] == {"label": "aligned", "model": None, "costs": [],
                                          "evals": {"advbench-test": "eval-aligned",
                                                    "strongreject-small": "eval-aligned-strongreject-small"}}


def test_a_changed_default_or_version_recomputes_a_step_and_a_rerun_reuses_it(tmp_path, monkeypatch):
    import buckle
    from buckle.curation.config import CurateConfig
    from buckle.launcher.pipeline import build
    from buckle.launcher.pipeline.config import PipelineConfig
    from buckle.launcher.pipeline.steps import run_steps

    raw = {**_config("m", "embedded-post"), "align": False, "defenses": ["pre"]}
    cfg = PipelineConfig.model_validate(raw)
    calls = []

    def curate_only():
        steps = build.build_steps(cfg, lambda argv, log, label: calls.append(argv))
        return run_steps([s for s in steps if s.name == "curate-aligned"], tmp_path, log=lambda s: None)

    first = curate_only()["curate-aligned"]
    assert len(calls) == 1 and json.loads((first.dir / "resolved.json").read_text())["config"]["tolerance"] == 0.1
    assert curate_only()["curate-aligned"].cached and len(calls) == 1  # unchanged: reused

    class Stricter(CurateConfig):  # a new default in the code, not in the user's YAML
        tolerance: float = 0.05

    monkeypatch.setattr(build, "CurateConfig", Stricter)
    changed = curate_only()["curate-aligned"]
    assert len(calls) == 2 and changed.key != first.key and not changed.cached
    assert yaml.safe_load((changed.dir / "curate.yaml").read_text())["tolerance"] == 0.05  # what the command got
    monkeypatch.setattr(buckle, "__version__", "9.9.9")
    assert not curate_only()["curate-aligned"].cached and len(calls) == 3


def test_twins_and_seeds_are_steps_of_their_own():
    from buckle.launcher.pipeline.build import build_steps
    from buckle.launcher.pipeline.config import PipelineConfig
    from buckle.launcher.pipeline.plan import build_plan

    raw = {**_config("m", "embedded-post"), "seeds": [1, 2], "defenses": ["during", "post"]}
    cfg = PipelineConfig.model_validate(raw)
    steps = {s.name: s for s in build_steps(cfg, lambda *a: None)}
    for name in ("post-s1", "post-s2", "post-uncurated-s1", "post-uncurated-s2", "during-uncurated-s2"):
        assert name in steps and f"eval-{name}" in steps
    twin, cur = steps["post-uncurated-s1"].params["recipe"], steps["post-s1"].params["recipe"]
    assert twin["data"]["curated"]["response_column"] == "original" and cur["data"]["curated"]["response_column"] is None
    assert steps["post-s2"].params["recipe"]["seed"] == 2 and steps["post-s2"].params["recipe"]["data"]["seed"] == 2
    # every defense training and every eval waits for the contamination gate; only evals read (and hash) it.
    # align and attack cannot: the gate reads the curate nodes that the aligned and attacked models rank
    assert all("contamination" in s.deps + s.after for n, s in steps.items()
               if n not in ("align", "attack", "curate-aligned", "curate-attacked", "contamination", "judges"))
    assert "contamination" in steps["eval-post-s1"].deps and "contamination" not in steps["post-s1"].deps
    assert build_plan(cfg).groups()["post"] == {"curated": ["post-s1", "post-s2"],
                                                "uncurated": ["post-uncurated-s1", "post-uncurated-s2"]}
    raw["controls"] = False
    names = {s.name for s in build_steps(PipelineConfig.model_validate(raw), lambda *a: None)}
    assert not any("uncurated" in n for n in names)


def test_sweep_variants_evaluate_on_dev_only(tmp_path):
    from buckle.core.config import ConfigError, load_config
    from buckle.launcher.pipeline.config import PipelineConfig, resolve
    from buckle.launcher.pipeline.sweep import variants

    cfg = load_config(PipelineConfig, resolve("sweep-dev"))
    got = dict(variants(cfg))
    assert len(got) >= 5 and got["post, amplify, 1.5B reviser"].curate.objective == "amplify"
    assert got["post, reduce, 1.5B reviser"].curate.objective == "reduce"
    own = got["post, reduce, own reviser"].curate
    assert own.objective == "reduce" and own.reviser is None  # null in the overlay: the scoring model revises
    assert got["post, amplify, 1.5B reviser"].curate.reviser == "qwen2.5-coder-1.5b-instruct"
    assert got["pre then attack, amplify, 1.5B reviser"].defenses == ["pre"]
    cfg.eval.benchmark = "advbench-test"
    with pytest.raises(ConfigError, match="dev split only"):
        variants(cfg)
