"""Read a data source into prompt/response records.

A source is a JSONL/JSON/Parquet file, a directory (curated output
`DIR/curated/part-*.parquet`, or Parquet/JSONL files, or a `save_to_disk`
dataset) or a hub dataset id. A column missing from the whole source is an
error naming the column and the source; rows with empty text are dropped and
counted.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

from buckle.curation.io.records import prompt_text, stable_id

# role -> (instruction candidates, response candidates, input column); the first present is used
ROLE_COLUMNS = {
    "harmful": (("instruction", "prompt"), ("response",), "input"),
    "benign": (("instruction",), ("response",), "input"),
    "user": (("instruction",), ("response",), "input"),
    "curated": (("instruction",), ("curated",), "input"),
    "prompts": (("prompt", "instruction"), (), "input"),  # align: harmful prompts only
}


def read_source(spec: Any, role: str, seed: int = 0) -> tuple[list[dict], int]:
    """Records {id, prompt, response, origin} of one source, and how many rows were dropped.

    Args:
        spec: a `train.config.DataSpec` (source, limit, column names, split).
        role: key of ROLE_COLUMNS; "prompts" reads prompts without responses.
        seed: a `limit` keeps a seeded random sample of that size.
    """
    rows, where = _rows(spec.source, spec.split)
    if not rows:
        raise ValueError(f"data source '{spec.source}' has no rows")
    inst_c, resp_c, inp_c = ROLE_COLUMNS[role]
    present = set().union(*(r.keys() for r in rows[:1000]))
    inst = _pick(spec.instruction_column, inst_c, present, where, "instruction_column")
    resp = _pick(spec.response_column, resp_c, present, where, "response_column") if resp_c else None
    inp = spec.input_column or inp_c
    out, dropped = [], 0
    for row in rows:
        rec = _record(row, inst, resp, inp)
        if rec is None:
            dropped += 1
            continue
        rec["origin"] = "harmful" if role == "prompts" else role
        out.append(rec)
    if spec.limit is not None and spec.limit < len(out):
        out = random.Random(seed).sample(out, spec.limit)
    return out, dropped


def _pick(explicit: str | None, candidates: tuple[str, ...], present: set, where: str, key: str) -> str:
    options = (explicit,) if explicit else candidates
    for col in options:
        if col in present:
            return col
    raise ValueError(f"data source '{where}' has no column '{options[0]}' (set {key}); "
                     f"columns: {', '.join(sorted(present)) or 'none'}")


def _record(row: dict, inst: str, resp: str | None, inp: str) -> dict | None:
    instruction = row.get(inst)
    response = row.get(resp) if resp else ""
    if not isinstance(instruction, str) or not instruction.strip():
        return None
    if resp and (not isinstance(response, str) or not response.strip()):
        return None
    extra = row.get(inp)
    rec = {"instruction": instruction.strip(), "input": extra.strip() if isinstance(extra, str) else ""}
    rid = row.get("id")
    return {"id": str(rid) if rid not in (None, "") else stable_id(rec["instruction"], response or ""),
            "prompt": prompt_text(rec), "response": (response or "").strip()}


def _rows(source: str, split: str) -> tuple[list[dict], str]:
    path = Path(source).expanduser()
    if path.is_file():
        return list(_file_rows(path)), str(path)
    if path.is_dir():
        return _dir_rows(path), str(path)
    if source.startswith((".", "/", "~")) or Path(source).suffix in (".jsonl", ".json", ".parquet"):
        raise FileNotFoundError(f"data source '{source}' not found")
    return _hub_rows(source, split), source


def _dir_rows(path: Path) -> list[dict]:
    if (path / "dataset_info.json").exists() or (path / "state.json").exists():
        from datasets import load_from_disk

        return [dict(r) for r in load_from_disk(str(path))]
    for pattern in ("curated/part-*.parquet", "*.parquet", "*.jsonl"):
        files = sorted(path.glob(pattern))
        if files:
            return [r for f in files for r in _file_rows(f)]
    raise FileNotFoundError(f"data directory '{path}' holds no curated/part-*.parquet, *.parquet or *.jsonl")


def _file_rows(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"'{path}' must hold a JSON list of objects")
        yield from data
        return
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: malformed JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: row is not a JSON object")
            yield row


def _hub_rows(source: str, split: str) -> list[dict]:
    from datasets import load_dataset

    try:
        ds = load_dataset(source, split=split)
    except Exception as exc:  # the hub raises many types; the user needs the name and the cause
        raise FileNotFoundError(f"data source '{source}' is neither a file nor a loadable dataset: {exc}") from None
    return [dict(r) for r in ds]
