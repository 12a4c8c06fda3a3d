"""The output layout: atomic parts, ids for resume, quarantine without duplicates."""
import pytest

from buckle.curation.io import store
from buckle.curation.io.records import OUTPUT_COLUMNS, Quarantine


def _row(i, **kw):
    row = {c: None for c in OUTPUT_COLUMNS}
    row.update(id=f"r{i}", original="a", curated="b", improved=bool(i % 2), ppl_before=2.0, ppl_after=1.5,
               round=1, objective="reduce", **kw)
    return row


def test_parts_are_whole_and_ids_resume(tmp_path):
    assert store.done_ids(tmp_path) == set()
    path = store.write_part(tmp_path, "curated", [_row(1), _row(2)])
    store.write_part(tmp_path, "curated", [_row(3)], part_name="part-b.parquet")
    assert path.parent == tmp_path / "curated" and path.name.startswith("part-")
    assert store.done_ids(tmp_path) == {"r1", "r2", "r3"}
    assert [p.name for p in (tmp_path / "curated").iterdir() if not p.name.startswith("part-")] == []
    rows = store.read_parts(tmp_path)
    assert {r["id"]: r["improved"] for r in rows} == {"r1": True, "r2": False, "r3": True}
    assert store.write_part(tmp_path, "curated", []) is None
    with pytest.raises(FileExistsError):
        store.write_part(tmp_path, "curated", [_row(4)], part_name="part-b.parquet")


def test_rows_must_carry_every_column(tmp_path):
    row = _row(1)
    del row["ppl_after"]
    with pytest.raises(ValueError, match="ppl_after"):
        store.write_part(tmp_path, "curated", [row])
    with pytest.raises(ValueError, match="unknown output kind"):
        store.schema("weird")


def test_quarantine_appends_once_per_location(tmp_path):
    assert store.append_quarantine(tmp_path, [Quarantine("f:1", "bad"), Quarantine("f:2", "worse", {"a": 1})]) == 2
    assert store.append_quarantine(tmp_path, [Quarantine("f:1", "bad"), Quarantine("f:3", "x")]) == 1
    with open(tmp_path / store.QUARANTINE_FILE, "a") as fh:
        fh.write('{"where": "torn')  # a crash mid-line
    entries = store.read_quarantine(tmp_path)
    assert [e["where"] for e in entries] == ["f:1", "f:2", "f:3"] and entries[1]["row"] == {"a": 1}
