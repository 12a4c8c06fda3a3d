import json

import pytest

from buckle.launcher.pipeline.steps import Step, run_steps


def _pipeline(calls, lr=1e-5):
    def make(name):
        def fn(ctx):
            calls.append(name)
            (ctx.out / "out.txt").write_text(name + "".join(d.name for d in ctx.deps.values()))
            return {"tokens": len(calls)}
        return fn
    return [
        Step("curate", make("curate"), {"rounds": 2}),
        Step("align", make("align"), {"lr": 2e-5}, ["curate"]),
        Step("attack", make("attack"), {"lr": lr}, ["align"]),
        Step("post", make("post"), {"epochs": 1}, ["attack", "curate"]),
        Step("other", make("other"), {"x": 1}, ["align"]),
    ]


def test_second_run_recomputes_nothing(tmp_path):
    calls = []
    first = run_steps(_pipeline(calls), tmp_path, log=lambda s: None)
    assert calls == ["curate", "align", "attack", "post", "other"]
    second = run_steps(_pipeline(calls), tmp_path, log=lambda s: None)
    assert len(calls) == 5 and all(r.cached for r in second.values())
    assert {n: r.key for n, r in first.items()} == {n: r.key for n, r in second.items()}
    index = json.loads((tmp_path / "pipeline.json").read_text())
    assert set(index) == {"curate", "align", "attack", "post", "other"}


def test_changed_stage_recomputes_it_and_what_follows(tmp_path):
    calls = []
    run_steps(_pipeline(calls), tmp_path, log=lambda s: None)
    calls.clear()
    res = run_steps(_pipeline(calls, lr=5e-5), tmp_path, log=lambda s: None)
    assert calls == ["attack", "post"]
    assert [n for n, r in res.items() if r.cached] == ["curate", "align", "other"]


def test_crashed_step_is_redone(tmp_path):
    calls = []

    def boom(ctx):
        raise RuntimeError("crash")

    steps = _pipeline(calls)
    steps[2] = Step("attack", boom, {"lr": 1e-5}, ["align"])
    with pytest.raises(RuntimeError, match="crash"):
        run_steps(steps, tmp_path, log=lambda s: None)
    calls.clear()
    run_steps(_pipeline(calls), tmp_path, log=lambda s: None)
    assert calls == ["attack", "post", "other"]


def test_unknown_dependency_is_named(tmp_path):
    with pytest.raises(ValueError, match="'attack' depends on unknown step 'nope'"):
        run_steps([Step("attack", lambda c: {}, {}, ["nope"])], tmp_path)


def test_after_orders_a_step_without_keying_it(tmp_path):
    calls = []

    def make(name):
        def fn(ctx):
            calls.append(name)
            return {}
        return fn

    def steps(gate):
        return [Step("train", make("train"), {"lr": 1}, after=["gate"]),
                Step("gate", make("gate"), {"evals": gate})]

    first = run_steps(steps(["advbench-test"]), tmp_path, log=lambda s: None)
    assert calls == ["gate", "train"]  # listed first, run after its gate
    calls.clear()
    second = run_steps(steps(["advbench-dev"]), tmp_path, log=lambda s: None)
    assert calls == ["gate"] and second["train"].cached and second["train"].key == first["train"].key
    with pytest.raises(ValueError, match="'train' depends on unknown step 'gate'"):
        run_steps(steps([])[:1], tmp_path)
