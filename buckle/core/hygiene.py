"""Overlap between training sources and evaluation sets: exact after normalising, and near-duplicate.

Near-duplicates are word-set Jaccard >= a threshold. Candidates come from
datasketch's MinHash LSH (run at a lower threshold, so it misses almost none),
and each candidate pair is confirmed with the exact Jaccard, so what is counted
never rests on a hash estimate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

NEAR = 0.7  # the near-duplicate bound (word Jaccard)
_NUM_PERM = 128
_LSH_SLACK = 0.2  # LSH runs at NEAR - slack: recall for pairs at NEAR stays ~1
_WORD = re.compile(r"[a-z0-9]+")


def normalize(text: str) -> str:
    """Lowercase, punctuation and whitespace runs collapsed to one space."""
    return " ".join(_WORD.findall(text.lower()))


def words(text: str) -> frozenset[str]:
    """The set of normalised words of a text."""
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two word sets (0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def near_pairs(left: Sequence[str], right: Sequence[str], threshold: float = NEAR) -> list[tuple[int, int, float]]:
    """Index pairs (i in left, j in right) whose word Jaccard is >= threshold.

    Args:
        left: texts, e.g. a training source.
        right: texts, e.g. an evaluation set.
        threshold: the near-duplicate bound.
    """
    from datasketch import MinHash, MinHashLSH

    lw, rw = [words(t) for t in left], [words(t) for t in right]
    lsh = MinHashLSH(threshold=max(0.05, threshold - _LSH_SLACK), num_perm=_NUM_PERM)
    for i, ws in enumerate(lw):
        if ws:
            lsh.insert(str(i), _minhash(MinHash, ws))
    out = []
    for j, ws in enumerate(rw):
        if not ws:
            continue
        for key in lsh.query(_minhash(MinHash, ws)):
            i = int(key)
            sim = jaccard(lw[i], ws)
            if sim >= threshold:
                out.append((i, j, sim))
    return sorted(out)


def _minhash(cls, ws: Iterable[str]):
    m = cls(num_perm=_NUM_PERM, seed=1)
    m.update_batch([w.encode() for w in ws])
    return m


@dataclass
class Overlap:
    """One cell of the contamination table: a training source against an evaluation set."""

    source: str
    eval_set: str
    exact: int = 0
    near: int = 0  # near-duplicate but not exact
    ids: set[str] = field(default_factory=set)  # evaluation rows hit


def check(sources: dict[str, list[str]], evals: dict[str, list[dict]],
          threshold: float = NEAR) -> list[Overlap]:
    """Every training source against every evaluation set.

    Args:
        sources: name -> training texts (prompts and responses alike).
        evals: name -> rows {"id", "texts": [prompt, reference, ...]}.
        threshold: the near-duplicate bound.
    Returns:
        One Overlap per (source, eval set), counting evaluation rows.
    """
    table = []
    for sname, texts in sources.items():
        exact_set = {normalize(t) for t in texts}
        for ename, rows in evals.items():
            cell = Overlap(sname, ename)
            flat = [(r["id"], t) for r in rows for t in r["texts"] if t]
            exact_ids = {rid for rid, t in flat if normalize(t) in exact_set}
            near_ids = {flat[j][0] for _, j, _ in near_pairs(texts, [t for _, t in flat], threshold)}
            cell.exact, cell.near = len(exact_ids), len(near_ids - exact_ids)
            cell.ids = exact_ids | near_ids
            table.append(cell)
    return table


def dropped_ids(table: list[Overlap]) -> dict[str, set[str]]:
    """Evaluation set -> ids of its rows that overlap any training source."""
    out: dict[str, set[str]] = {}
    for cell in table:
        out.setdefault(cell.eval_set, set()).update(cell.ids)
    return out


def markdown(table: list[Overlap], sizes: dict[str, int]) -> str:
    """The contamination table: source x evaluation set: exact, near, dropped (rows of that set)."""
    drops = dropped_ids(table)
    lines = ["| training source | evaluation set | exact | near (Jaccard >= "
             f"{NEAR}) | evaluation rows dropped |", "|---|---|---|---|---|"]
    for c in table:
        lines.append(f"| {c.source} | {c.eval_set} | {c.exact} | {c.near} | {len(c.ids)} |")
    totals = "; ".join(f"{e}: {len(ids)} of {sizes.get(e, '?')} dropped, {sizes.get(e, 0) - len(ids)} kept"
                       for e, ids in drops.items())
    return "\n".join(lines) + ("\n\n" + totals if totals else "") + "\n"


def groups(texts: Sequence[str], threshold: float = NEAR) -> list[list[int]]:
    """Indices grouped so that texts with word Jaccard >= threshold (transitively) share a group.

    Exact pairwise comparison: meant for small sets (AdvBench's 520), where a
    split must be provably clean.
    """
    ws = [words(t) for t in texts]
    parent = list(range(len(ws)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ws)):
        for j in range(i + 1, len(ws)):
            if jaccard(ws[i], ws[j]) >= threshold:
                parent[root(j)] = root(i)
    by: dict[int, list[int]] = {}
    for i in range(len(ws)):
        by.setdefault(root(i), []).append(i)
    return sorted(by.values())
