"""The safety-data baseline: its plan nodes, its recipe (same budget, refusals in place of curated texts),
its contamination source and its refusals (none a keyword-judge marker)."""
import json

import pytest
import yaml

from buckle.launcher.pipeline.config import PipelineConfig

STAGE = {"max_steps": 2, "batch_size": 4, "max_length": 64}


def _raw(**over):
    raw = {"name": "t", "model": "m", "align": True,
           "stages": {"align": {"recipe": "embedded-align"}, "attack": {"recipe": "embedded-attack"},
                      "pre": {"recipe": "embedded-pre", "overrides": STAGE},
                      "during": {"recipe": "embedded-during"}, "post": {"recipe": "embedded-post"}},
           "eval": {"benchmark": "advbench-test", "limit": 4}, "baselines": ["safety-data"]}
    return {**raw, **over}


def test_no_marker_of_the_keyword_judge_is_in_a_baseline_refusal():
    from buckle.eval.judges.keyword import DEFAULT_MARKERS, KeywordJudge
    from buckle.core.refusals import MARKER_FREE_REFUSALS

    norm = [m.casefold() for m in DEFAULT_MARKERS]
    for text in MARKER_FREE_REFUSALS:
        flat = text.replace("\u2019", "'").casefold()
        assert not [m for m in norm if m in flat], text
        assert KeywordJudge().classify(text) == (False, "")  # the judge itself agrees


def test_the_named_refusal_set_pairs_every_train_prompt_with_a_marker_free_refusal():
    from buckle.core.catalog.data import SAFETY_REFUSALS, materialize
    from buckle.core.refusals import MARKER_FREE_REFUSALS

    prompts = [json.loads(x) for x in materialize("advbench-train").read_text().splitlines()]
    pairs = [json.loads(x) for x in materialize(SAFETY_REFUSALS).read_text().splitlines()]
    assert [p["instruction"] for p in pairs] == [p["prompt"] for p in prompts]
    assert {p["response"] for p in pairs} == set(MARKER_FREE_REFUSALS)  # every wording, cycled


def test_each_defense_gets_a_safety_data_run_with_the_follow_up_and_seeds():
    from buckle.eval.verdicts import SAFETY_DATA
    from buckle.launcher.pipeline.plan import build_plan

    plan = build_plan(PipelineConfig.model_validate(_raw(seeds=[1, 2])))
    assert plan.groups()["post"] == {"curated": ["post-s1", "post-s2"],
                                     "uncurated": ["post-uncurated-s1", "post-uncurated-s2"],
                                     "safety-data": ["post-safety-data-s1", "post-safety-data-s2"]}
    pre = plan.row("pre-safety-data-s1").model  # pre's baseline is attacked afterwards, like pre
    assert pre.name == "pre-safety-data-s1-attack" and pre.start.variant is SAFETY_DATA and pre.seed == 1
    assert plan.row("post-safety-data-s2").model.start is plan.row("attacked").model
    assert "safety-data" not in json.dumps(build_plan(PipelineConfig.model_validate(_raw(baselines=[]))).to_dict())
    with pytest.raises(ValueError, match="baselines"):
        PipelineConfig.model_validate(_raw(baselines=["safety-dat"]))


def test_the_baseline_trains_like_the_defense_on_refusals_and_is_contamination_checked(tmp_path):
    from types import SimpleNamespace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from buckle.core.catalog.data import SAFETY_REFUSALS
    from buckle.launcher.pipeline.build import build_steps
    from buckle.launcher.pipeline.steps import StepContext

    cfg = PipelineConfig.model_validate(_raw())
    calls = []
    steps = {s.name: s for s in build_steps(cfg, lambda argv, log, label: calls.append(argv))}
    base, cur = steps["post-safety-data"].params["recipe"], steps["post"].params["recipe"]
    assert base["data"]["curated"]["source"] == SAFETY_REFUSALS
    assert base["data"]["curated"]["response_column"] == "response" and base["data"]["curated"]["limit"] == 64
    assert {k: v for k, v in base.items() if k not in ("data", "output_dir")} == \
        {k: v for k, v in cur.items() if k not in ("data", "output_dir")}  # same recipe, epochs, lr, seed
    assert steps["post-safety-data"].deps == steps["post"].deps  # the count follows the curate node
    sources = steps["contamination"].params["sources"]
    assert sources[f"{SAFETY_REFUSALS} (safety-data curated)"]["role"] == "curated"
    # at run time the limit is the number of curated records the defense reads (here 3 < the recipe's 64)
    curated = tmp_path / "curate" / "run" / "curated"
    curated.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a", "b", "c"], "instruction": ["q1", "q2", "q3"],
                             "curated": ["x", "y", "z"], "original": ["x", "y", "w"]}), curated / "part-0.parquet")
    deps = {"curate-attacked": SimpleNamespace(run=tmp_path / "curate" / "run"),
            "attack": SimpleNamespace(run=tmp_path / "attack" / "run", metrics={})}
    out = tmp_path / "step"
    out.mkdir()
    with pytest.raises(Exception):  # the fake runner trains nothing: the step stops reading metrics
        steps["post-safety-data"].fn(StepContext(out, {}, deps, "[1/1] post-safety-data"))
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["data"]["curated"] == {"source": SAFETY_REFUSALS, "limit": 3, "response_column": "response"}
    assert calls and calls[-1][0] == "train"
