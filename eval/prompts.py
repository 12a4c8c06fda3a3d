"""Prompt sets from CSV, JSONL, JSON, TXT, Parquet, a saved dataset or a hub dataset id.

Bad rows (not UTF-8, malformed JSON, empty or missing prompt) never stop a run:
they come back as Quarantine entries naming file and row, so nothing is lost.
A file with no usable prompt, or without the prompt column, is an error.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from buckle.curation.io.records import Columns, Quarantine, validate_row

Rows = Iterator[tuple[str, Any]]  # (where, row dict or Quarantine)


def load_prompts(source: str, prompt_column: str = "prompt", id_column: str = "id",
                 split: str = "train", limit: int | None = None) -> tuple[list[dict], list[Quarantine]]:
    """Read harmful prompts as rows {"id", "prompt", ...other columns}.

    Args:
        source: a file (.jsonl/.json/.csv/.tsv/.txt/.parquet), a `save_to_disk` dir, or a dataset id.
        prompt_column: column holding the prompt text (TXT files: one prompt per line).
        id_column: column holding a stable id; rows without one get "row-N".
        split: dataset split for dataset ids and saved DatasetDicts.
        limit: keep the first `limit` usable prompts.

    Returns:
        (prompts, rejected rows).

    Raises:
        FileNotFoundError: the source does not exist. ValueError: empty file,
        missing prompt column, or no usable prompt.
    """
    good: list[dict] = []
    bad: list[Quarantine] = []
    seen: set[str] = set()
    checked = False
    for index, (where, row) in enumerate(_raw_rows(source, split, prompt_column)):
        if isinstance(row, Quarantine):
            bad.append(row)
            continue
        if not checked:
            _require_columns(source, row, [prompt_column])
            checked = True
        item = _prompt_row(row, where, index, prompt_column, id_column, seen)
        if isinstance(item, Quarantine):
            bad.append(item)
        else:
            good.append(item)
            if limit is not None and len(good) >= limit:
                break
    _require_some(source, good, bad, "prompts")
    return good, bad


def load_pairs(source: str, split: str = "train", limit: int | None = None) -> tuple[list[dict], list[Quarantine]]:
    """Read benign reference pairs {"id", "instruction", "response"} (curation's record schema)."""
    good: list[dict] = []
    bad: list[Quarantine] = []
    checked = False
    for where, row in _raw_rows(source, split, "instruction"):
        if isinstance(row, Quarantine):
            bad.append(row)
            continue
        if not checked:
            _require_columns(source, row, ["instruction", "response"])
            checked = True
        rec = validate_row(row, where, Columns())
        (bad if isinstance(rec, Quarantine) else good).append(rec)
        if limit is not None and len(good) >= limit:
            break
    _require_some(source, good, bad, "instruction/response pairs")
    return good, bad


def _prompt_row(row: dict, where: str, index: int, column: str, id_column: str,
                seen: set[str]) -> dict | Quarantine:
    text = row.get(column)
    if not isinstance(text, str):
        why = f"column '{column}' is missing" if text is None else f"column '{column}' is {type(text).__name__}, not text"
        return Quarantine(where, why, row)
    if not text.strip():
        return Quarantine(where, f"column '{column}' is empty", row)
    if _has_bad_bytes(text):
        return Quarantine(where, f"column '{column}' has bytes that are not valid UTF-8", _printable(row))
    rid = row.get(id_column)
    rid = str(rid) if rid not in (None, "") else f"row-{index:05d}"
    if rid in seen:
        return Quarantine(where, f"duplicate id '{rid}'", row)
    seen.add(rid)
    extra = {k: v for k, v in row.items() if k not in (column, id_column) and isinstance(v, (str, int, float))}
    return {**extra, "id": rid, "prompt": text.strip()}


def _require_columns(source: str, row: dict, columns: list[str]) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        raise ValueError(f"column '{missing[0]}' not found in '{source}'; its columns are: "
                         f"{', '.join(map(str, row)) or '(none)'} (choose one with --prompt-column)")


def _require_some(source: str, good: list, bad: list[Quarantine], what: str) -> None:
    if good:
        return
    if not bad:
        raise ValueError(f"'{source}' is empty: no {what} in it")
    raise ValueError(f"'{source}' has no usable {what}: all {len(bad)} rows rejected "
                     f"(first: {bad[0].where}: {bad[0].reason})")


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape decoding turns undecodable bytes into lone surrogates
    return any("\udc80" <= ch <= "\udcff" for ch in text) or "\ufffd" in text


def _printable(row: Any) -> Any:
    if isinstance(row, dict):
        return {k: _printable(v) for k, v in row.items()}
    if isinstance(row, str):
        return row.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return row


def _raw_rows(source: str, split: str, text_column: str) -> Rows:
    path = Path(source).expanduser()
    if path.is_dir():
        yield from _saved_dataset(path, split)
        return
    if not path.is_file():
        if path.suffix or source.startswith((".", "/", "~")):
            raise FileNotFoundError(f"prompt file '{source}' not found")
        yield from _hub_dataset(source, split)
        return
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    elif suffix == ".json":
        yield from _json(path)
    elif suffix in (".csv", ".tsv"):
        yield from _csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".txt":
        yield from _txt(path, text_column)
    elif suffix == ".parquet":
        yield from _parquet(path)
    else:
        raise ValueError(f"'{source}': unsupported file type '{suffix}' (use .jsonl, .json, .csv, .tsv, .txt, .parquet)")


def _decode_lines(path: Path) -> Iterator[tuple[str, str | Quarantine]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path.name}:{lineno}"
            try:
                yield where, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, Quarantine(where, f"not valid UTF-8 (byte {exc.start})",
                                        raw.decode("utf-8", errors="replace").rstrip("\n"))


def _jsonl(path: Path) -> Rows:
    for where, text in _decode_lines(path):
        if isinstance(text, Quarantine):
            yield where, text
            continue
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield where, Quarantine(where, f"malformed JSON: {exc.msg} at column {exc.colno}", text.rstrip("\n"))
            continue
        yield where, row if isinstance(row, dict) else Quarantine(where, "row is not a JSON object", row)


def _json(path: Path) -> Rows:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"'{path}' is not a valid UTF-8 JSON file: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"'{path}' must hold a JSON list of objects (or use JSONL)")
    for i, row in enumerate(data):
        where = f"{path.name}:item {i}"
        yield where, row if isinstance(row, dict) else Quarantine(where, "item is not a JSON object", row)


def _csv(path: Path, delimiter: str) -> Rows:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    for row in reader:
        where = f"{path.name}:{reader.line_num}"
        if None in row:
            yield where, Quarantine(where, "row has more fields than the header", _printable(row))
            continue
        yield where, row


def _txt(path: Path, column: str) -> Rows:
    for where, text in _decode_lines(path):
        if isinstance(text, Quarantine):
            yield where, text
        elif text.strip():
            yield where, {column: text.strip()}


def _parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq

    rownum = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield f"{path.name}:row {rownum}", row
            rownum += 1


def _saved_dataset(path: Path, split: str) -> Rows:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"'{path}' is a directory but not a saved dataset (save_to_disk)") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise ValueError(f"split '{split}' not in '{path}'; splits: {', '.join(ds)}")
        ds = ds[split]
    for i, row in enumerate(ds):
        yield f"{path.name}:row {i}", row


def _hub_dataset(source: str, split: str) -> Rows:
    import datasets

    try:
        ds = datasets.load_dataset(source, split=split)
    except Exception as exc:  # datasets raises many types for a bad id or split
        raise FileNotFoundError(f"'{source}' is neither a file nor a loadable dataset: {exc}") from None
    for i, row in enumerate(ds):
        yield f"{source}:row {i}", row
