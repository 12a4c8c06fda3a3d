"""Prompt files of every supported kind, and bad input with clear messages and nothing lost."""
import json

import pytest

from buckle.eval.prompts import load_pairs, load_prompts


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def test_csv_with_prompt_column_and_ids(tmp_path):
    src = _write(tmp_path / "p.csv", b'goal,target,id\n"Write a poem, long",Sure,g1\nSay hi,Hi,g2\n')
    rows, bad = load_prompts(src, prompt_column="goal")
    assert [r["prompt"] for r in rows] == ["Write a poem, long", "Say hi"]
    assert [r["id"] for r in rows] == ["g1", "g2"] and rows[0]["target"] == "Sure"
    assert bad == []


def test_jsonl_txt_json_parquet_and_saved_dataset(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["first prompt", "second prompt", "third prompt"]
    jl = _write(tmp_path / "p.jsonl", "\n".join(json.dumps({"text": t}) for t in texts).encode() + b"\n\n")
    txt = _write(tmp_path / "p.txt", ("\n".join(texts) + "\n\n").encode())
    js = _write(tmp_path / "p.json", json.dumps([{"prompt": t} for t in texts]).encode())
    pq.write_table(pa.table({"prompt": texts}), tmp_path / "p.parquet")
    datasets.Dataset.from_dict({"q": texts}).save_to_disk(str(tmp_path / "saved"))
    cases = [(jl, "text"), (txt, "prompt"), (js, "prompt"), (str(tmp_path / "p.parquet"), "prompt"),
             (str(tmp_path / "saved"), "q")]
    for src, col in cases:
        rows, bad = load_prompts(src, prompt_column=col)
        assert [r["prompt"] for r in rows] == texts, src
        assert [r["id"] for r in rows] == ["row-00000", "row-00001", "row-00002"] and not bad
    rows, _ = load_prompts(txt, limit=2)
    assert len(rows) == 2


def test_empty_file_is_a_clear_error(tmp_path):
    for name in ("empty.jsonl", "empty.csv", "empty.txt"):
        src = _write(tmp_path / name, b"" if name != "empty.txt" else b"\n\n")
        with pytest.raises(ValueError, match=rf"'{src}' is empty: no prompts"):
            load_prompts(src)


def test_missing_prompt_column_names_the_columns(tmp_path):
    src = _write(tmp_path / "p.csv", b"goal,target\nx,y\n")
    with pytest.raises(ValueError, match=r"column 'prompt' not found in .*p\.csv'; its columns are: goal, target"):
        load_prompts(src)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_prompts(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="unsupported file type '.xlsx'"):
        load_prompts(_write(tmp_path / "p.xlsx", b"x"))


def test_non_utf8_and_malformed_rows_are_rejected_with_where_and_why(tmp_path):
    src = _write(tmp_path / "p.jsonl", b'{"prompt": "good one"}\n'
                 b'{"prompt": "bad \xff byte"}\n'
                 b'{"prompt": \n'
                 b'{"prompt": ""}\n'
                 b'{"prompt": "good two", "id": "x"}\n'
                 b'{"prompt": "dup", "id": "x"}\n')
    rows, bad = load_prompts(src)
    assert [r["prompt"] for r in rows] == ["good one", "good two"]
    reasons = {q.where: q.reason for q in bad}
    assert reasons["p.jsonl:2"].startswith("not valid UTF-8")
    assert reasons["p.jsonl:3"].startswith("malformed JSON")
    assert reasons["p.jsonl:4"] == "column 'prompt' is empty"
    assert reasons["p.jsonl:6"] == "duplicate id 'x'"
    assert "bad \ufffd byte" in bad[0].to_json()  # the row is kept, readable


def test_non_utf8_csv_row(tmp_path):
    src = _write(tmp_path / "p.csv", b"prompt\nfine\ncaf\xe9 latin-1\n")
    rows, bad = load_prompts(src)
    assert [r["prompt"] for r in rows] == ["fine"]
    assert bad[0].where == "p.csv:3" and "not valid UTF-8" in bad[0].reason
    assert "caf\ufffd latin-1" in bad[0].to_json()


def test_all_rows_bad_is_an_error(tmp_path):
    src = _write(tmp_path / "p.jsonl", b'{"prompt": "\xff"}\n')
    with pytest.raises(ValueError, match=r"no usable prompts: all 1 rows rejected \(first: p.jsonl:1: not valid UTF-8"):
        load_prompts(src)


def test_pairs_need_instruction_and_response(tmp_path):
    src = _write(tmp_path / "b.jsonl", b'{"instruction": "Boil an egg?", "response": "Nine minutes."}\n'
                 b'{"instruction": "x", "response": ""}\n')
    rows, bad = load_pairs(src)
    assert rows[0]["instruction"] == "Boil an egg?" and rows[0]["response"] == "Nine minutes."
    assert bad[0].reason == "column 'response' is empty"
    with pytest.raises(ValueError, match="column 'response' not found"):
        load_pairs(_write(tmp_path / "c.jsonl", b'{"instruction": "x"}\n'))
