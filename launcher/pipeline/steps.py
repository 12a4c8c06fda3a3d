"""Content-addressed pipeline steps: a step reruns only when its inputs, config or code change.

A step's key hashes its name, its parameters (the resolved config, defaults
included), the keys of the steps it depends on, and buckle's version and git
commit, so an edit to one stage invalidates that stage and what follows, and so
does a change of a default or of the code. The parameters are written beside
the step's output (resolved.json).
A step may also run `after` others without reading them (training waits for
the contamination gate): that orders it but leaves its key alone, so runs
evaluated on different sets share their trainings.
A step is done when its directory holds done.json; a crash leaves none, so
the rerun redoes that step (and may resume inside it).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import buckle
from buckle.core.manifest import git_commit
from buckle.launcher.pipeline.resources import Placement


@dataclass
class Step:
    """One unit of pipeline work."""

    name: str
    fn: Callable[["StepContext"], dict]
    params: dict[str, Any] = field(default_factory=dict)  # the resolved config: hashed and written
    deps: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # run after these, but neither read nor hashed
    command: Optional[Callable[["StepContext"], list[str]]] = None  # its `buckle` argv, built without running
    placement: Optional[Placement] = None  # where its command runs; None: no placement (a plain step)


@dataclass
class StepResult:
    """Where a step's outputs are and what it measured."""

    name: str
    key: str
    dir: Path
    metrics: dict[str, Any]
    cached: bool
    wall_s: float

    @property
    def run(self) -> Path:
        """Where the step's command wrote its outputs."""
        return self.dir / "run"


@dataclass
class StepContext:
    """What a step function sees: its output dir, params, finished deps and its label, e.g. `[3/14] align`."""

    out: Path
    params: dict[str, Any]
    deps: dict[str, StepResult]
    label: str = ""


def code_version() -> dict[str, str | None]:
    """What of the code a step's key covers: buckle's version and the checkout's commit."""
    return {"buckle": buckle.__version__, "commit": git_commit()}


def step_key(step: Step, dep_keys: dict[str, str]) -> str:
    """Hash of the step's name, params, dependency keys and the code version."""
    blob = json.dumps({"name": step.name, "params": step.params, "deps": dep_keys, "code": code_version()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def step_dir(root: Path, name: str, key: str) -> Path:
    """Where a step of this key keeps its outputs."""
    return root / "steps" / f"{name}-{key}"


def predict(steps: list[Step], root: Path) -> list[tuple[Step, StepContext]]:
    """Each step in run order with the context run_steps would give it (finished deps in the dirs their
    keys name, no metrics), computed without running or writing anything: what a dry run shows."""
    results: dict[str, StepResult] = {}
    out = []
    for step in order_steps(steps):
        key = step_key(step, {d: results[d].key for d in step.deps})
        results[step.name] = StepResult(step.name, key, step_dir(root, step.name, key), {}, False, 0.0)
        out.append((step, StepContext(results[step.name].dir, step.params, {d: results[d] for d in step.deps})))
    return out


def order_steps(steps: list[Step]) -> list[Step]:
    """Topological order; unknown or cyclic dependencies are errors naming the step."""
    by_name = {s.name: s for s in steps}
    done: list[Step] = []
    seen: set[str] = set()

    def visit(s: Step, trail: tuple[str, ...]) -> None:
        if s.name in seen:
            return
        if s.name in trail:
            raise ValueError(f"pipeline step '{s.name}' depends on itself via {' -> '.join(trail)}")
        for d in s.deps + s.after:
            if d not in by_name:
                raise ValueError(f"pipeline step '{s.name}' depends on unknown step '{d}'")
            visit(by_name[d], trail + (s.name,))
        seen.add(s.name)
        done.append(s)

    for s in steps:
        visit(s, ())
    return done


def run_steps(steps: list[Step], root: Path, only: set[str] | None = None,
              log: Callable[[str], None] = print) -> dict[str, StepResult]:
    """Run steps in dependency order, reusing every step whose key is already done.

    Args:
        steps: the pipeline's steps.
        root: the pipeline directory; step outputs go to root/steps/NAME-KEY.
        only: if given, run just these steps (their deps must be done already).
        log: where progress lines go.
    """
    results: dict[str, StepResult] = {}
    ordered = order_steps(steps)
    width = max(len(s.name) for s in ordered) if ordered else 0
    for i, step in enumerate(ordered, 1):
        key = step_key(step, {d: results[d].key for d in step.deps})
        out = step_dir(root, step.name, key)
        done = out / "done.json"
        label = f"[{i}/{len(ordered)}] {step.name:{width}s}"
        if done.exists():
            info = json.loads(done.read_text())
            results[step.name] = StepResult(step.name, key, out, info["metrics"], True, info["wall_s"])
            log(f"{label}  cached ({out.name})")
            continue
        if only is not None and step.name not in only:
            raise RuntimeError(f"step '{step.name}' is not done yet; run it first")
        log(f"{label}  running ({out.name})")
        out.mkdir(parents=True, exist_ok=True)
        (out / "resolved.json").write_text(json.dumps(step.params, indent=2, default=str))
        t0 = time.time()
        metrics = step.fn(StepContext(out, step.params, {d: results[d] for d in step.deps}, label)) or {}
        wall = round(time.time() - t0, 2)
        done.write_text(json.dumps({"key": key, "params": step.params, "metrics": metrics,
                                    "wall_s": wall}, indent=2, default=str))
        results[step.name] = StepResult(step.name, key, out, metrics, False, wall)
        log(f"{label}  done in {wall:.1f}s")
    _write_index(root, results)
    return results


def _write_index(root: Path, results: dict[str, StepResult]) -> None:
    index = {n: {"dir": str(r.dir.relative_to(root)), "key": r.key, "cached": r.cached,
                 "wall_s": r.wall_s, "metrics": r.metrics} for n, r in results.items()}
    (root / "pipeline.json").write_text(json.dumps(index, indent=2, default=str))


def prune(root: Path, keep: dict[str, StepResult]) -> list[Path]:
    """Remove step dirs no longer referenced by the current pipeline; returns what went."""
    live = {r.dir.name for r in keep.values()}
    gone = [p for p in (root / "steps").iterdir() if p.is_dir() and p.name not in live]
    for p in gone:
        shutil.rmtree(p)
    return gone
