"""The stage rules in one table: what each stage starts from, trains on, and what follows it.

The every-stage pipeline builds its plan from this table and `buckle train`
reads each stage's main data role from it, so a stage's rules are written here
only. Models are named by the pipeline's report rows: `base` (the model as
given), `aligned` (align's output, or the given model without align),
`attacked` (the attack's output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class StageRule:
    """How one stage runs in the every-stage pipeline.

    Attributes:
        name: the stage, as recipes spell it.
        starts_from: the model it fine-tunes: base, aligned or attacked.
        main_data: the data role `--limit` and the stage's own examples come from.
        defense: whether it is one of the paper's three defenses.
        follow_up: a stage run on its output before it is evaluated (pre: the user's attack).
        user_from_attack: its user data is the attack's harmful data (during).
        scored_by: the model whose perplexity ranks its curated texts (the defended model).
        required: the data roles a recipe of this stage must give.
        optional: the data roles it may give besides.
    """

    name: str
    starts_from: str
    main_data: str
    defense: bool = False
    follow_up: Optional[str] = None
    user_from_attack: bool = False
    scored_by: Optional[str] = None
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()


RULES: dict[str, StageRule] = {r.name: r for r in (
    StageRule("align", starts_from="base", main_data="harmful", required=frozenset({"harmful", "benign"})),
    StageRule("pre", starts_from="aligned", main_data="curated", defense=True, follow_up="attack",
              scored_by="aligned", required=frozenset({"curated"})),
    StageRule("during", starts_from="aligned", main_data="user", defense=True, user_from_attack=True,
              scored_by="aligned", required=frozenset({"user", "curated"})),
    StageRule("post", starts_from="attacked", main_data="curated", defense=True, scored_by="attacked",
              required=frozenset({"curated"})),
    StageRule("attack", starts_from="aligned", main_data="harmful", required=frozenset({"harmful"}),
              optional=frozenset({"benign"})),
)}
STAGES = tuple(RULES)
DEFENSES = tuple(name for name, rule in RULES.items() if rule.defense)


def rule(stage: str) -> StageRule:
    """The rules of one stage.

    Raises:
        ValueError: an unknown stage; names the known ones.
    """
    if stage not in RULES:
        raise ValueError(f"unknown stage '{stage}'; known: {', '.join(STAGES)}")
    return RULES[stage]
