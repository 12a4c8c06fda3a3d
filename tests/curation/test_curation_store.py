"""The output layout: atomic parts written once, provenance columns, quarantine read back."""
import pytest

from buckle.curation.io import store
from buckle.curation.io.records import OUTPUT_COLUMNS


def _row(i, **kw):
    row = {c: None for c in OUTPUT_COLUMNS}
    row.update(id=f"r{i}", original="a", curated="b", improved=bool(i % 2), ppl_before=2.0, ppl_after=1.5,
               round=1, objective="reduce", **kw)
    return row


def test_parts_are_whole_and_written_once(tmp_path):
    path = store.write_part(tmp_path, "curated", [_row(1), _row(2, node_id="n1", worker_pid=7)], "part-a.parquet")
    store.write_part(tmp_path, "curated", [_row(3)], "part-b.parquet")
    assert path == tmp_path / "curated" / "part-a.parquet"
    assert [p.name for p in (tmp_path / "curated").iterdir() if not p.name.startswith("part-")] == []
    rows = store.read_parts(tmp_path)
    assert {r["id"]: r["improved"] for r in rows} == {"r1": True, "r2": False, "r3": True}
    assert [(r["node_id"], r["worker_pid"]) for r in rows[:2]] == [(None, None), ("n1", 7)]
    assert store.write_part(tmp_path, "curated", [], "part-c.parquet") is None
    with pytest.raises(FileExistsError):
        store.write_part(tmp_path, "curated", [_row(4)], "part-b.parquet")
    with pytest.raises(ValueError, match="part-"):
        store.write_part(tmp_path, "curated", [_row(4)], "rows.parquet")


def test_rows_must_carry_every_column(tmp_path):
    row = _row(1)
    del row["ppl_after"]
    with pytest.raises(ValueError, match="ppl_after"):
        store.write_part(tmp_path, "curated", [row], "part-x.parquet")
    with pytest.raises(ValueError, match="unknown output kind"):
        store.schema("weird")
    assert store.schema("scored", provenance=True).names[-2:] == ["node_id", "worker_pid"]


def test_a_torn_quarantine_line_is_ignored(tmp_path):
    (tmp_path / store.QUARANTINE_FILE).write_text('{"where": "f:1", "reason": "bad"}\n{"where": "torn')
    assert [e["where"] for e in store.read_quarantine(tmp_path)] == ["f:1"]
    assert store.read_quarantine(tmp_path / "nothing-here") == []
