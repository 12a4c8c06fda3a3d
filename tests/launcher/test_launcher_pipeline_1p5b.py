"""The shipped `quickstart-1.5b`: a model aligned as shipped, so no align stage; LoRA in bfloat16 everywhere;
the model revises its own texts, each defense's ranked by the model it trains; pre, during and post each
with its uncurated twin and the safety-data baseline. Checked on the config and on its dry-run job plan."""
import json

import pytest

from buckle.launcher.cli import main

NAME = "quickstart-1.5b"
MODEL = "qwen2.5-coder-1.5b-instruct"
DEFENSE_RUNS = [f"{d}{v}" for d in ("pre", "during", "post") for v in ("", "-uncurated", "-safety-data")]
ROWS = ["aligned", "attacked", *DEFENSE_RUNS]


@pytest.fixture(autouse=True)
def shipped_profiles_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BUCKLE_CONFIG_DIR", str(tmp_path / "config"))  # no user profile shadows a shipped one
    monkeypatch.chdir(tmp_path)


def _config():
    from buckle.core.config import load_config
    from buckle.launcher.pipeline.config import PipelineConfig, resolve, validate_sections

    cfg = load_config(PipelineConfig, resolve(NAME))
    validate_sections(cfg)
    return cfg


def test_it_is_shipped_and_validates_with_the_named_1p5b_model():
    from buckle.core.catalog.models import named
    from buckle.launcher.pipeline.config import shipped

    assert NAME in shipped()
    cfg = _config()
    assert named(cfg.model) is not None and named(cfg.model).folder == MODEL  # converted once into the cache
    assert cfg.align is False and "align" not in cfg.stages  # aligned as shipped
    assert cfg.defenses == ["pre", "during", "post"] and cfg.baselines == ["safety-data"] and cfg.controls
    assert cfg.contamination == "drop" and cfg.seeds is None
    assert cfg.curate.objective == "amplify" and cfg.curate.limit == 24
    assert cfg.curate.reviser is None  # unset: each curate step's scoring model writes its own revisions
    assert cfg.eval.benchmarks == ["advbench-test", "strongreject-small"] and cfg.eval.benign_prompts == "mtbench"


@pytest.mark.parametrize("stage", ["attack", "pre", "during", "post"])
def test_every_stage_trains_lora_in_bfloat16_and_merges_in_bfloat16(stage):
    from buckle.launcher.pipeline.config import stage_recipe
    from buckle.train.config import TrainConfig

    recipe = TrainConfig.model_validate(stage_recipe(_config(), stage, model="m", output="o", sources={}))
    assert recipe.lora is not None and recipe.lora.merge and recipe.lora.merge_dtype == "bfloat16"
    assert recipe.bf16 is True and recipe.deepspeed is None  # one CPU process per training
    assert recipe.learning_rate == 2e-4  # the measured LoRA attack rate, kept for every stage


def test_during_trains_on_the_attacks_pairs_at_the_attacks_length():
    from buckle.launcher.pipeline.config import recipe_content

    cfg = _config()
    attack, during = recipe_content(cfg, "attack"), recipe_content(cfg, "during")
    assert during["epochs"] == attack["epochs"] and during["learning_rate"] == attack["learning_rate"]
    # one curated text per harmful pair is too many for 24 texts: each of the 24 is mixed in once
    assert round(during["data"]["curated_ratio"] * attack["data"]["harmful"]["limit"]) == cfg.curate.limit


def _plan(capsys):
    assert main(["pipeline", "--config", NAME, "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    return plan, {s["name"]: s for s in plan["steps"]}


def test_the_dry_run_plan_has_no_align_and_every_defense_with_its_twin_and_baseline(capsys):
    plan, steps = _plan(capsys)
    trains = {n for n, s in steps.items() if s["kind"] == "train"}
    assert trains == {"attack", *DEFENSE_RUNS, "pre-attack", "pre-uncurated-attack", "pre-safety-data-attack"}
    evals = {n for n in steps if n.startswith("eval-")}
    assert evals == {f"eval-{r}" for r in ROWS} | {f"eval-{r}-strongreject-small" for r in ROWS}
    assert set(steps) - trains - evals == {"curate-aligned", "curate-attacked", "contamination", "judges", "report"}
    assert list(steps)[-1] == "report" and plan["fits"] is True
    # run here: every step one process on this machine, trainings too (no --nproc, no job)
    assert all(s["processes"] == 1 and s["job"] is None and "--nproc" not in s["command"] for s in steps.values())
    assert steps["attack"]["deps"] == []  # from the model as given: nothing aligns it first
    assert steps["pre-attack"]["deps"] == ["pre"] and steps["post"]["deps"][0] == "attack"
    assert f"--model {MODEL} " in steps["eval-aligned"]["command"]  # the aligned row is the model itself
    assert "/attack-" in steps["eval-attacked"]["command"] and "/pre-attack-" in steps["eval-pre"]["command"]


def test_curate_steps_are_scored_by_the_model_each_defense_trains_which_revises_its_own_texts(capsys):
    from buckle.launcher.pipeline.build import build_steps

    _, steps = _plan(capsys)
    assert steps["curate-aligned"]["deps"] == [] and steps["curate-attacked"]["deps"] == ["attack"]
    for stage in ("pre", "during", "pre-uncurated", "during-safety-data"):
        assert "curate-aligned" in steps[stage]["deps"] and "curate-attacked" not in steps[stage]["deps"]
    for stage in ("post", "post-uncurated", "post-safety-data"):
        assert "curate-attacked" in steps[stage]["deps"] and "curate-aligned" not in steps[stage]["deps"]
    built = {s.name: s for s in build_steps(_config(), lambda *a: None)}
    aligned, attacked = (built[n].params["config"] for n in ("curate-aligned", "curate-attacked"))
    assert aligned["model"] == MODEL and attacked["model"] == "<attack>"  # the attacked model, once it exists
    assert aligned["reviser"] is None and attacked["reviser"] is None  # None: the scoring model revises
    assert aligned["objective"] == attacked["objective"] == "amplify"


def test_its_contamination_step_keeps_all_of_advbench_test(tmp_path):
    """The static training sources against the evaluation sets, on the real named sets when cached: without
    align only the safety-data refusals bring AdvBench-train prompts (1 is in StrongREJECT-small), and 12
    held-out harmful references copy attack pairs; the 280 test prompts the estimate counts all stay."""
    from buckle.core.catalog.assets import cache_dir
    from buckle.launcher.pipeline.build import build_steps

    params = next(s for s in build_steps(_config(), lambda *a: None) if s.name == "contamination").params
    names = [p["source"] for p in params["sources"].values()] + list(params["evals"])
    if not all((cache_dir() / "data" / f"{n}.jsonl").exists() for n in names):
        pytest.skip("named data sets not cached here")
    assert "advbench-train" not in {p["source"] for p in params["sources"].values()}  # no align stage
    (tmp_path / "c.json").write_text(json.dumps(params))
    assert main(["contamination", "--config", str(tmp_path / "c.json"), "--output", str(tmp_path / "run")]) == 0
    out = json.loads((tmp_path / "run" / "contamination.json").read_text())
    assert out["dropped"] == {**{b: 0 for b in out["dropped"]}, "strongreject-small": 1, "harmful-pairs-heldout": 12}
    assert sum(1 for _ in open(out["clean"]["advbench-test"])) == 280
