import json

from buckle.core.catalog.data import materialize


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


def test_advbench_split_keeps_near_duplicates_on_one_side():
    from buckle.core.hygiene import jaccard, words

    parts = {s: [words(r["prompt"]) for r in _rows(f"advbench-{s}")] for s in ("train", "dev", "test")}
    seen = parts["train"] + parts["dev"]
    close = [t for t in parts["test"] if any(jaccard(t, o) > 0.7 for o in seen)]
    assert close == []  # the old random split left 16 such test prompts
    assert all(jaccard(d, t) < 0.7 for d in parts["dev"] for t in parts["train"])


def test_split_deals_whole_groups_and_sizes_stay_near_target():
    from buckle.core.catalog.data import ADVBENCH_SPLITS, split_indices

    prompts = [f"write a guide to topic {i} now" for i in range(30)] + [f"unrelated thing {i} x{i} y{i}" for i in range(90)]
    ix = split_indices(prompts)
    assert sorted(sum(ix.values(), [])) == list(range(120))
    sides = {i: s for s, lst in ix.items() for i in lst}
    assert len({sides[i] for i in range(30)}) == 1  # one near-duplicate group, one side
    assert set(ix) == set(ADVBENCH_SPLITS)
