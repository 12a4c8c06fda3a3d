"""Reading sources and mixing the stages' data."""
import json

import pytest

from buckle.train.config import TrainConfig
from buckle.train.data import build_mix
from buckle.train.refusals import REFUSALS
from buckle.train.sources import read_source


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _pairs(n, prefix):
    return [{"id": f"{prefix}{i}", "instruction": f"{prefix} question {i}", "response": f"answer {i}"}
            for i in range(n)]


def _curated_dir(tmp_path, n):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "cur" / "curated"
    out.mkdir(parents=True)
    rows = [{"id": f"c{i}", "instruction": f"curated q {i}", "input": "ctx" if i % 2 else "",
             "original": "old", "curated": f"safer answer {i}", "improved": True} for i in range(n)]
    pq.write_table(pa.Table.from_pylist(rows[: n // 2]), out / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[n // 2:]), out / "part-00001.parquet")
    return str(tmp_path / "cur")


def test_curated_parquet_dir_uses_curated_column_and_input(tmp_path):
    cfg = TrainConfig(stage="pre", data={"curated": _curated_dir(tmp_path, 6)})
    recs, dropped = read_source(cfg.data.curated, "curated")
    assert dropped == 0 and len(recs) == 6
    by_id = {r["id"]: r for r in recs}
    assert by_id["c1"]["prompt"] == "curated q 1\n\nctx" and by_id["c0"]["prompt"] == "curated q 0"
    assert by_id["c3"]["response"] == "safer answer 3"


def test_during_mixes_at_ratio_with_fixed_seed(tmp_path):
    data = {"user": _jsonl(tmp_path / "u.jsonl", _pairs(10, "u")), "curated": _curated_dir(tmp_path, 7),
            "curated_ratio": 1.5, "seed": 3}
    recs, counts = build_mix(TrainConfig(stage="during", data=data))
    assert counts["user"] == 10 and counts["curated"] == 15 and len(recs) == 25
    assert len({r["id"] for r in recs if r["origin"] == "curated"}) == 7  # cycled, all used
    again, _ = build_mix(TrainConfig(stage="during", data=data))
    assert [r["id"] for r in again] == [r["id"] for r in recs]
    other, _ = build_mix(TrainConfig(stage="during", data={**data, "seed": 4}))
    assert [r["id"] for r in other] != [r["id"] for r in recs]


def test_align_pairs_prompts_with_varied_refusals(tmp_path):
    prompts = [{"id": f"adv{i}", "prompt": f"harmful request {i}"} for i in range(30)]
    data = {"harmful": _jsonl(tmp_path / "p.jsonl", prompts),
            "benign": {"source": _jsonl(tmp_path / "b.jsonl", _pairs(20, "b")), "limit": 8}}
    recs, counts = build_mix(TrainConfig(stage="align", data=data))
    assert counts["harmful"] == 30 and counts["benign"] == 8
    refusals = [r["response"] for r in recs if r["origin"] == "harmful"]
    assert set(refusals) <= set(REFUSALS) and len(set(refusals)) == len(REFUSALS)
    assert all(r["response"].startswith("answer") for r in recs if r["origin"] == "benign")


def test_attack_takes_n_pairs(tmp_path):
    data = {"harmful": {"source": _jsonl(tmp_path / "h.jsonl", _pairs(40, "h")), "limit": 12}}
    recs, counts = build_mix(TrainConfig(stage="attack", data=data))
    assert len(recs) == 12 and counts["harmful"] == 12
    assert [r["id"] for r in build_mix(TrainConfig(stage="attack", data=data))[0]] == [r["id"] for r in recs]


def test_empty_rows_are_dropped_and_counted(tmp_path):
    rows = _pairs(3, "h") + [{"instruction": "q", "response": "  "}, {"instruction": "", "response": "a"}]
    recs, counts = build_mix(TrainConfig(stage="attack", data={"harmful": _jsonl(tmp_path / "h.jsonl", rows)}))
    assert len(recs) == 3 and counts["dropped"] == 2


def test_missing_column_names_column_and_source(tmp_path):
    path = _jsonl(tmp_path / "x.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError, match=r"no column 'instruction'.*columns: answer, question"):
        build_mix(TrainConfig(stage="attack", data={"harmful": path}))
    cfg = TrainConfig(stage="attack", data={"harmful": {"source": path, "instruction_column": "question",
                                                        "response_column": "answer"}})
    assert build_mix(cfg)[0][0]["prompt"] == "q"


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_pairs(1, "h")[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: malformed JSON"):
        read_source(TrainConfig(stage="attack", data={"harmful": str(path)}).data.harmful, "harmful")


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        build_mix(TrainConfig(stage="attack", data={"harmful": str(tmp_path / "none.jsonl")}))
