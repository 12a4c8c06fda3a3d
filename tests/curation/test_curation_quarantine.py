"""Bad input goes to quarantine with where and why; read = curated + quarantined; reruns resume."""
import json
import re

from buckle.curation.io import store
from buckle.launcher.cli import main

FAST = ["--rounds", "1", "--beam", "1", "--temperatures", "1.0", "--top-ps", "1.0", "--max-new-tokens", "6",
        "--max-length", "1024", "--objective", "reduce", "--no-progress"]


def _mixed_file(path):
    good = {"instruction": "How do I boil an egg?", "response": "Boil it for nine minutes."}
    lines = [
        json.dumps({"id": "g1", **good}).encode(),                                        # 1 good
        b'{"id": "x", "instruction": "Hi", "response": ',                                 # 2 malformed JSON
        json.dumps({"id": "m", "instruction": "What is rain?"}).encode(),                 # 3 missing response
        json.dumps({"id": "e", "instruction": "Why?", "response": "   "}).encode(),       # 4 empty text
        b'{"id": "u", "instruction": "caf\xe9 \xff", "response": "ok"}',                  # 5 not UTF-8
        json.dumps({"id": "long", "instruction": "Tell me more.",
                    "response": "This sentence is long. " * 300}).encode(),              # 6 over-long
        json.dumps({"id": "g2", "instruction": "Name a fruit.", "response": "An apple is a fruit."}).encode(),  # 7
        b"",                                                                               # 8 blank: not a row (line numbers still count it)
        json.dumps({"id": "g1", **good}).encode(),                                        # 9 duplicate id
        b"[1, 2, 3]",                                                                      # 10 not an object
        json.dumps({"id": "n", "instruction": 42, "response": "Forty-two."}).encode(),    # 11 not text
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_quarantine_accounting_and_resume(tmp_path, wide_tiny_dir, capsys):
    src = _mixed_file(tmp_path / "mixed.jsonl")
    out = tmp_path / "run"
    argv = ["curate", "--input", str(src), "--output", str(out), "--model", str(wide_tiny_dir), *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "read 10 = curated 2 + quarantined 8" in printed
    assert re.search(r"^\s+2\s+[\d.]+\s+[\d.]+\s+\d+\s+[\d.]+$", printed, re.M)  # the table row
    entries = {e["where"]: e["reason"] for e in store.read_quarantine(out)}
    want = {
        "mixed.jsonl:2": "malformed JSON", "mixed.jsonl:3": "missing column 'response'",
        "mixed.jsonl:4": "column 'response' is empty", "mixed.jsonl:5": "not valid UTF-8",
        "mixed.jsonl:6": "text too long", "mixed.jsonl:9": "duplicate id 'g1'",
        "mixed.jsonl:10": "row is list", "mixed.jsonl:11": "column 'instruction' is int",
    }
    assert set(entries) == set(want)
    for where, reason in want.items():
        assert reason in entries[where], (where, entries[where])
    rows = store.read_parts(out)
    assert sorted(r["id"] for r in rows) == ["g1", "g2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["counts"]["read"] == 10
    assert manifest["config"]["objective"] == "reduce"

    parts = store.part_files(out)
    assert main(argv) == 0  # rerun: nothing new is written, the accounting still holds
    printed = capsys.readouterr().out
    assert "read 10 = curated 2 + quarantined 8" in printed and "2 curated by an earlier run" in printed
    assert store.part_files(out) == parts
    assert len(store.read_quarantine(out)) == 8
    assert len(json.loads((out / "manifest.json").read_text())["previous_runs"]) == 1


def test_parquet_rows_are_located_by_row_number(tmp_path, wide_tiny_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from buckle.curation.config import CurateConfig
    from buckle.curation.executors import run

    table = pa.table({"q": ["Name a fruit.", "Why?", "Name a colour."], "a": ["An apple.", None, "Blue."]})
    pq.write_table(table, tmp_path / "in.parquet")
    cfg = CurateConfig(rounds=1, beam=1, temperatures=[1.0], top_ps=[1.0], max_new_tokens=4,
                       instruction_column="q", response_column="a", objective="reduce")
    result = run(cfg, str(tmp_path / "in.parquet"), str(tmp_path / "out"), "curate", str(wide_tiny_dir),
                 progress=False)
    assert (result["read"], result["curated"], result["quarantined"]) == (3, 2, 1)
    [entry] = store.read_quarantine(tmp_path / "out")
    assert entry["where"] == "in.parquet:row 1" and "missing column 'a'" in entry["reason"]
    ids = {r["id"] for r in store.read_parts(tmp_path / "out")}
    assert len(ids) == 2 and all(i.startswith("r-") for i in ids)  # content ids for rows without one


def test_missing_input_and_unknown_model_are_one_line_errors(tmp_path, capsys):
    assert main(["curate", "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("buckle curate: error: input") and "not found" in err and "\n" not in err
    src = _mixed_file(tmp_path / "m.jsonl")
    assert main(["curate", "--input", str(src), "--output", str(tmp_path / "o"), "--model", "./no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model directory './no-such-model' not found" in err and "Traceback" not in err
