import json

from buckle.launcher.data import materialize


def _rows(name):
    return [json.loads(line) for line in open(materialize(name), encoding="utf-8")]


def test_advbench_splits_are_disjoint_and_cover_all():
    full = {r["prompt"] for r in _rows("advbench")}
    parts = {s: {r["prompt"] for r in _rows(f"advbench-{s}")} for s in ("train", "dev", "test")}
    assert [len(parts[s]) for s in ("train", "dev", "test")] == [160, 80, 280]
    assert parts["train"].isdisjoint(parts["test"]) and parts["dev"].isdisjoint(parts["test"])
    assert parts["train"].isdisjoint(parts["dev"])
    assert parts["train"] | parts["dev"] | parts["test"] == full and len(full) == 520


def test_corpus_heldout_never_overlaps_train():
    held, train = _rows("commonsense-heldout"), _rows("commonsense-train")
    assert len(held) == 40 and len(train) == 200
    assert {r["id"] for r in held}.isdisjoint({r["id"] for r in train})
    assert all(r["instruction"] and r["response"] for r in held + train)


def test_harmful_pairs_have_both_sides():
    rows = _rows("harmful-pairs")
    assert len(rows) == 400 and len({r["id"] for r in rows}) == 400
    assert all(r["instruction"].strip() and r["response"].strip() for r in rows)
