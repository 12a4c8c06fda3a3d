"""The typed plan of `buckle pipeline`: every node once, named once, its dependencies as references.

The plan is built from a PipelineConfig and the stage table (train.stages);
the step builder, the report and the sweep read it, so no module builds a step
name again or parses one back. `Plan.to_dict` is the plan as written beside
a run (plan.json).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from buckle.core.slug import slug
from buckle.eval.verdicts import BASELINES, CURATED, UNCURATED, Comparator
from buckle.launcher.pipeline.config import PipelineConfig
from buckle.launcher.pipeline.resources import CPU_TASK, Needs, curate_needs, eval_needs, train_needs
from buckle.train.stages import DEFENSES, rule


@dataclass(eq=False)
class Node:
    """One unit of the pipeline; `deps` are read (and keyed), `after` only ordered; `needs`: what it asks
    of the machines (pipeline.resources)."""

    name: str
    needs: Needs = CPU_TASK

    def deps(self) -> list["Node"]:
        """The nodes whose outputs this one reads (their keys are part of its key)."""
        return []

    def after(self) -> list["Node"]:
        """The nodes this one waits for without reading them."""
        return []


@dataclass(eq=False)
class TrainNode(Node):
    """A training of one stage, from a model node (None: the given model), on data nodes.

    `variant` None trains on the curate node's curated texts; a comparator trains in their place on
    their originals (UNCURATED: the twin) or on as many refusals (SAFETY_DATA: the safety-data baseline).
    """

    stage: str = ""
    start: Optional["TrainNode"] = None
    curated: Optional["CurateNode"] = None
    variant: Optional[Comparator] = None
    seed: Optional[int] = None
    gate: Optional["ContaminationNode"] = None

    def deps(self) -> list[Node]:
        return [n for n in (self.start, self.curated) if n is not None]

    def after(self) -> list[Node]:
        return [self.gate] if self.gate is not None else []


@dataclass(eq=False)
class CurateNode(Node):
    """Curation of the input texts, ranked by the model a defense trains (None: the given model)."""

    scorer: Optional[TrainNode] = None
    row: str = ""  # the report row of the scoring model: aligned or attacked

    def deps(self) -> list[Node]:
        return [self.scorer] if self.scorer is not None else []


@dataclass(eq=False)
class ContaminationNode(Node):
    """Every training source and curated text against every evaluation set."""

    curates: list[CurateNode] = field(default_factory=list)

    def deps(self) -> list[Node]:
        return list(self.curates)


@dataclass(eq=False)
class JudgesNode(Node):
    """Each harmful-prompt judge against human labels."""


@dataclass(eq=False)
class EvalNode(Node):
    """One model evaluated on one benchmark (the first also scores the benign and harmful references)."""

    row: str = ""
    model: Optional[TrainNode] = None
    benchmark: str = ""
    first: bool = True
    gate: Optional[ContaminationNode] = None

    def deps(self) -> list[Node]:
        return [n for n in (self.model, self.gate) if n is not None]


@dataclass(eq=False)
class ReportNode(Node):
    """Charts and the table of the first benchmark's evaluations; waits for every check."""

    evals: list[EvalNode] = field(default_factory=list)
    checks: list[Node] = field(default_factory=list)

    def deps(self) -> list[Node]:
        return [*self.evals, *self.checks]


@dataclass(eq=False)
class Row:
    """A model of the report: its node (None: the given model), the nodes that made it, its evals."""

    label: str
    model: Optional[TrainNode]
    costs: list[Node]
    evals: dict[str, EvalNode] = field(default_factory=dict)  # benchmark -> node


@dataclass(eq=False)
class Defense:
    """A defense's curate node and its runs' labels (one per seed): CURATED and each comparator's name."""

    curate: CurateNode
    runs: dict[str, list[str]]


@dataclass(eq=False)
class Plan:
    """Every node of a pipeline in run order, the report's rows and the defenses."""

    nodes: list[Node]
    rows: list[Row]
    defenses: dict[str, Defense]
    benchmarks: list[str]
    curates: list[CurateNode]
    contamination: ContaminationNode
    judges: Optional[JudgesNode]
    report: ReportNode

    def row(self, label: str) -> Row:
        """The report row named `label`."""
        return next(r for r in self.rows if r.label == label)

    def groups(self) -> dict[str, dict[str, list[str]]]:
        """Defense -> {CURATED: labels per seed, comparator name: labels per seed}: what the paired tests take."""
        return {d: {k: list(v) for k, v in g.runs.items()} for d, g in self.defenses.items()}

    def to_dict(self) -> dict[str, Any]:
        """The plan as data: nodes with their kind and dependencies by name, rows, defenses."""
        return {"nodes": [{"name": n.name, "kind": type(n).__name__.removesuffix("Node").lower(),
                           "deps": [d.name for d in n.deps()], "after": [d.name for d in n.after()],
                           "needs": n.needs.kind}
                          for n in self.nodes],
                "rows": [{"label": r.label, "model": r.model.name if r.model else None,
                          "costs": [c.name for c in r.costs],
                          "evals": {b: e.name for b, e in r.evals.items()}} for r in self.rows],
                "defenses": {d: {"curate": g.curate.name, **g.runs} for d, g in self.defenses.items()},
                "benchmarks": self.benchmarks}


def seed_runs(cfg: PipelineConfig) -> list[tuple[str, int | None]]:
    """(name suffix, seed) per training run of a defense; one unsuffixed run with no `seeds`."""
    if not cfg.seeds:
        return [("", None)]
    if len(cfg.seeds) == 1:
        return [("", cfg.seeds[0])]
    return [(f"-s{s}", s) for s in cfg.seeds]


def defense_label(stage: str, variant: Optional[Comparator] = None, suffix: str = "") -> str:
    """The node and report name of a defense run, e.g. `post`, `post-uncurated-s1`, `pre-safety-data`."""
    return stage + (f"-{variant.name}" if variant else "") + suffix


def variants(cfg: PipelineConfig) -> list[Optional[Comparator]]:
    """The runs of each defense: curated (None), its twin with `controls`, each of `baselines`."""
    return [None] + ([UNCURATED] if cfg.controls else []) + [BASELINES[b] for b in cfg.baselines]


def benchmarks(cfg: PipelineConfig) -> list[str]:
    """The harmful-prompt sets every model is evaluated on: `eval.benchmarks`, else `eval.benchmark`."""
    many = cfg.eval.benchmarks
    return list(many) if many else ([cfg.eval.benchmark] if cfg.eval.benchmark else [""])


def build_plan(cfg: PipelineConfig) -> Plan:
    """The plan of a pipeline: align, attack, a curate node per scoring model, the checks, each
    defense with its twin and baselines (per seed, with its follow-up), an eval per model and benchmark,
    the report."""
    def train(name: str, stage: str, **kw) -> TrainNode:
        return TrainNode(name, train_needs(stage, cfg.stages.get(stage)), stage=stage, **kw)

    align = train("align", "align") if cfg.align else None
    # without an align stage the given model is the aligned starting point
    models: dict[str, Optional[TrainNode]] = {"base": None, "aligned": align}
    attack = train("attack", "attack", start=models[rule("attack").starts_from])
    models["attacked"] = attack
    nodes: list[Node] = [n for n in (align, attack) if n is not None]
    defenses = [d for d in DEFENSES if d in cfg.defenses]
    curates: dict[str, CurateNode] = {}
    for d in defenses:  # the defended model ranks the texts; defenses sharing it share the node
        row = rule(d).scored_by
        curates.setdefault(row, CurateNode(f"curate-{row}", curate_needs(cfg.curate), scorer=models[row], row=row))
    gate = ContaminationNode("contamination", curates=list(curates.values()))
    judges = JudgesNode("judges") if cfg.judge_agreement else None
    nodes += [*curates.values(), gate] + ([judges] if judges else [])
    rows = [Row("base", None, [])] if cfg.align and cfg.eval_base else []
    rows += [Row("aligned", align, [align] if align else []), Row("attacked", attack, [attack])]
    groups: dict[str, Defense] = {}
    for d in defenses:
        stage, curate = rule(d), curates[rule(d).scored_by]
        groups[d] = Defense(curate, {})
        for variant in variants(cfg):
            for suffix, seed in seed_runs(cfg):
                label = defense_label(d, variant, suffix)
                node = train(label, d, start=models[stage.starts_from], curated=curate, variant=variant,
                             seed=seed, gate=gate)
                nodes.append(node)
                groups[d].runs.setdefault(variant.name if variant else CURATED, []).append(label)
                row = Row(label, node, [curate, node])
                if stage.follow_up:  # pre: immunized, then attacked as the user would
                    follow = train(f"{label}-{stage.follow_up}", stage.follow_up, start=node, seed=seed, gate=gate)
                    nodes.append(follow)
                    row = Row(label, follow, [curate, node, follow])
                rows.append(row)
    benches = benchmarks(cfg)
    evals: list[EvalNode] = []
    for row in rows:
        for i, bench in enumerate(benches):
            name = f"eval-{row.label}" if i == 0 else f"eval-{row.label}-{slug(bench)}"
            row.evals[bench] = EvalNode(name, eval_needs(cfg.eval), row=row.label, model=row.model,
                                        benchmark=bench, first=i == 0, gate=gate)
            evals.append(row.evals[bench])
    report = ReportNode("report", evals=evals, checks=[gate] + ([judges] if judges else []))
    return Plan(nodes + evals + [report], rows, groups, benches, list(curates.values()), gate, judges, report)
