"""The stage table agrees with the recipes' data rules, and says what the pipeline builds from it."""
import pytest

import typing

from buckle.train.config import Stage
from buckle.train.stages import DEFENSES, RULES, STAGES, rule


def test_every_recipe_stage_has_one_rule_whose_main_data_it_requires():
    assert set(STAGES) == set(typing.get_args(Stage))  # the recipes' Literal spells the same stages
    for name, r in RULES.items():
        assert r.main_data in r.required, name
        assert not r.required & r.optional, name
        assert r.starts_from in ("base", "aligned", "attacked")
        assert (r.scored_by is not None) == r.defense  # every defense ranks texts by the model it trains


def test_the_paper_rules():
    assert DEFENSES == ("pre", "during", "post")
    assert rule("pre").follow_up == "attack" and rule("during").user_from_attack
    assert rule("post").starts_from == rule("post").scored_by == "attacked"
    assert rule("pre").scored_by == rule("during").scored_by == "aligned"
    with pytest.raises(ValueError, match="unknown stage 'mid'; known: align, pre"):
        rule("mid")
