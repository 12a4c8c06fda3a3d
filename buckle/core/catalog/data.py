"""Named data sets, materialized as JSONL files that train/ and eval/ read.

AdvBench is split once, deterministically, into train (refusal SFT for
`align`), dev (tuning) and test (evaluation): evaluation never sees train/dev,
and near-duplicate prompts never straddle two splits.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from buckle.core.config import config_error, read_yaml
from buckle.core.shipped import package_folder
from buckle.core.catalog.assets import ASSETS, cache_dir, fetch, sha256_file
from buckle.core.refusals import MARKER_FREE_REFUSALS, cycled

ADVBENCH_SPLITS = {"train": (0, 160), "dev": (160, 240), "test": (240, 520)}
_SPLIT_SEED = 20241003
_SPLIT_METHOD = "+near-dup-groups-v1"


def _commonsense() -> Path:
    return package_folder("buckle.curation", "data", "commonsense.jsonl")


NAMED = {
    "advbench": "AdvBench, all 520 behaviours (prompts)",
    "advbench-train": "AdvBench train split, 160 prompts (refusal SFT for align)",
    "advbench-dev": "AdvBench dev split, 80 prompts (tuning)",
    "advbench-test": "AdvBench test split, 280 prompts (held-out evaluation)",
    "harmbench": "HarmBench, 200 standard prompts",
    "harmful-pairs": "400 harmful instruction/response pairs (attack data)",
    "commonsense": "the embedded commonsense corpus (instruction/response)",
    "commonsense-train": "the corpus less its held-out slice (for curation and benign mixing)",
    "commonsense-heldout": "every 6th corpus pair, 40 over all topics (benign eval; never curated or trained on)",
    "harmful-pairs-train": "the harmful pairs less their held-out slice, 300 (attack and during data)",
    "harmful-pairs-heldout": "every 4th harmful pair, 100 (judge-free NLL reference; never trained on)",
    "strongreject": "StrongREJECT, 313 forbidden prompts (second benchmark)",
    "strongreject-small": "StrongREJECT small, 60 forbidden prompts",
    "mtbench": "MT-Bench, 80 benign questions, first turns (over-refusal, out of distribution)",
    "advbench-train-refusals": "the AdvBench train prompts, each with a refusal holding no keyword-judge "
                               "marker (the safety-data baseline)",
}
SAFETY_REFUSALS = "advbench-train-refusals"  # the named set the safety-data baseline trains on
HELDOUT_EVERY = 6


def list_named() -> dict[str, str]:
    """Names of the data sets buckle can materialize, with descriptions."""
    return dict(NAMED)


def is_named(name: str) -> bool:
    """Whether `name` is one of the named data sets."""
    return name in NAMED


def materialize(name: str, force: bool = False) -> Path:
    """Write (or reuse) the JSONL file of a named data set and return its path.

    Prompt sets have rows {"id", "prompt"} (+ "category"); pair sets have rows
    {"id", "instruction", "response"}.
    """
    if name not in NAMED:
        raise ValueError(f"unknown data set '{name}'; known: {', '.join(NAMED)}")
    if name == "commonsense":
        return _commonsense()
    if name.startswith("commonsense-"):
        return _corpus_slice(name)
    if name in _MORE:  # sets that are slices of another named set, or read from a wheel folder
        return _MORE[name](name, force)
    source = name.split("-")[0] if name.startswith("advbench") else name
    raw = fetch(source, force=force)
    out = cache_dir() / "data" / f"{name}.jsonl"
    stamp = out.with_suffix(".source")
    # a split's stamp names the split method too, so a cached file from an older split is remade
    method = _SPLIT_METHOD if name.startswith("advbench-") else ""
    if out.exists() and stamp.exists() and stamp.read_text() == ASSETS[source].sha256 + method and not force:
        return out
    rows = _ROWS[source](raw)
    if name.startswith("advbench-"):
        rows = _split(rows, name.split("-", 1)[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.rename(out)
    stamp.write_text(sha256_file(raw) + method)
    return out


def _corpus_slice(name: str) -> Path:
    lines = _commonsense().read_text(encoding="utf-8").splitlines(keepends=True)
    held = [ln for i, ln in enumerate(lines) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    rest = [ln for i, ln in enumerate(lines) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    part = held if name.endswith("heldout") else rest
    out = cache_dir() / "data" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text(encoding="utf-8") != "".join(part):
        out.write_text("".join(part), encoding="utf-8")
    return out


def _split(rows: list[dict], split: str) -> list[dict]:
    """One split; near-duplicate prompts (word Jaccard >= 0.7) stay together on one side."""
    return [rows[i] for i in split_indices([r["prompt"] for r in rows])[split]]


def split_indices(prompts: list[str]) -> dict[str, list[int]]:
    """Seeded split of prompts into train/dev/test, sizes near ADVBENCH_SPLITS, no group straddling two.

    Groups of near-duplicates are shuffled and dealt in turn to the first split
    with room for the whole group, else to the one with the most room left; on
    AdvBench this gives 160/80/280 exactly (see tests).
    """
    from buckle.core.hygiene import groups

    order = groups(prompts)
    random.Random(_SPLIT_SEED).shuffle(order)
    target = {name: hi - lo for name, (lo, hi) in ADVBENCH_SPLITS.items()}
    out: dict[str, list[int]] = {name: [] for name in target}
    for group in order:
        room = {n: target[n] - len(out[n]) for n in target}
        fits = [n for n in target if room[n] >= len(group)]
        out[fits[0] if fits else max(room, key=room.get)] += group
    return {n: sorted(ix) for n, ix in out.items()}


def _advbench(path: Path) -> list[dict]:
    seeds = read_yaml(path).get("seeds")
    if not isinstance(seeds, list):
        raise config_error(path, "seeds", "expected a list of AdvBench seeds")
    return [{"id": f"advbench-{i:03d}", "prompt": s["value"].strip(),
             "category": (s.get("harm_categories") or [""])[0]} for i, s in enumerate(seeds)]


def _harmbench(path: Path) -> list[dict]:
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [{"id": f"harmbench-{i:03d}", "prompt": ln} for i, ln in enumerate(x for x in lines if x)]


def _pairs(path: Path) -> list[dict]:
    items = json.loads(path.read_text(encoding="utf-8"))
    return [{"id": f"harmful-{i:03d}", "instruction": it["user"].strip(),
             "response": it["assistant"].strip()} for i, it in enumerate(items)]


_ROWS = {"advbench": _advbench, "harmbench": _harmbench, "harmful-pairs": _pairs}


# harmful pairs: every HARMFUL_HELDOUT_EVERY-th pair is held out (the judge-free NLL
# reference); attack and during recipes must read harmful-pairs-train to keep it unseen
HARMFUL_HELDOUT_EVERY = 4


def _write_rows(name: str, rows: list[dict]) -> Path:
    out = cache_dir() / "data" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def _pairs_slice(name: str, force: bool) -> Path:
    rows = [json.loads(ln) for ln in materialize("harmful-pairs", force).read_text(encoding="utf-8").splitlines()]
    held = name.endswith("heldout")
    k = HARMFUL_HELDOUT_EVERY
    # near copies across the two slices are left to the contamination step, which
    # drops them from the reference set (12 of 100) and counts them in the report
    return _write_rows(name, [r for i, r in enumerate(rows) if (i % k == k - 1) == held])


def _strongreject(name: str, force: bool) -> Path:
    import csv

    folder = fetch("strongreject", force=force)
    file = "strongreject_small_dataset.csv" if name.endswith("small") else "strongreject_dataset.csv"
    with open(folder / "data" / file, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return _write_rows(name, [{"id": f"{name}-{i:03d}", "prompt": r["forbidden_prompt"].strip(),
                               "category": r.get("category", ""), "source": r.get("source", "")}
                              for i, r in enumerate(rows)])


def _refusal_pairs(name: str, force: bool) -> Path:
    """Pairs {id, instruction, response}: a train prompt and a marker-free refusal, cycled as align cycles its own."""
    prompts = [json.loads(ln) for ln in materialize("advbench-train", force).read_text(encoding="utf-8").splitlines()]
    texts = cycled(MARKER_FREE_REFUSALS, len(prompts), 0)
    return _write_rows(name, [{"id": f"{p['id']}-refusal", "instruction": p["prompt"], "response": t}
                              for p, t in zip(prompts, texts)])


def _mtbench(name: str, force: bool) -> Path:
    # first turns only: the second turns build on the model's own first answer
    lines = fetch("mtbench", force=force).read_text(encoding="utf-8").splitlines()
    items = [json.loads(ln) for ln in lines if ln.strip()]
    return _write_rows(name, [{"id": f"mtbench-{it['question_id']}", "prompt": it["turns"][0].strip(),
                               "category": it["category"]} for it in items])


_MORE = {"harmful-pairs-train": _pairs_slice, "harmful-pairs-heldout": _pairs_slice,
         "strongreject": _strongreject, "strongreject-small": _strongreject, SAFETY_REFUSALS: _refusal_pairs,
         "mtbench": _mtbench}
