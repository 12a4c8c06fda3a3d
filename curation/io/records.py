"""Records and the on-disk schema that train/ and eval/ read.

Input record: {id, instruction, response} plus optional input and source.
Bad rows never stop a run: they become quarantine entries with where and why.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# Columns of curated Parquet output (one row per input record).
OUTPUT_COLUMNS = (
    "id", "instruction", "input", "source", "original", "curated", "improved",
    "ppl_before", "ppl_after", "readability_before", "readability_after",
    "helpfulness_before", "helpfulness_after", "safety_before", "safety_after",
    "round", "temperature", "top_p", "revision", "objective", "model", "reviser",
)  # model: the scorer (its perplexity ranked the candidates); reviser: the model that wrote them;
# revision: how ("rewrite", or "note": the original verbatim with the reviser's note; "" unchanged)
# Columns of `buckle score` output.
SCORE_COLUMNS = ("id", "instruction", "input", "response", "source", "perplexity", "tokens")


@dataclass
class Columns:
    """Which input columns hold the fields (for datasets with other names)."""

    id: str = "id"
    instruction: str = "instruction"
    response: str = "response"
    input: str = "input"
    source: str = "source"


@dataclass
class Quarantine:
    """A row that could not be used, with where it came from and why."""

    where: str
    reason: str
    row: Any = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """One JSONL line; the raw row is kept so nothing is lost."""
        raw = self.row if isinstance(self.row, (dict, str, type(None))) else repr(self.row)
        return json.dumps({"where": self.where, "reason": self.reason, "row": raw, **self.extra},
                          ensure_ascii=False, default=str)


def stable_id(instruction: str, response: str) -> str:
    """Content id for rows without one: same text, same id, across runs and nodes."""
    digest = hashlib.sha1(f"{instruction}\x1f{response}".encode("utf-8")).hexdigest()
    return f"r-{digest[:16]}"


def validate_row(row: Any, where: str, cols: Columns | None = None) -> dict | Quarantine:
    """Turn a raw row into a record, or a Quarantine naming the problem.

    Args:
        row: a mapping read from any source.
        where: e.g. "data.jsonl:12" (line) or "part-0.parquet:row 7".
        cols: column mapping.
    """
    cols = cols or Columns()
    if not isinstance(row, dict):
        return Quarantine(where, f"row is {type(row).__name__}, not an object", row)
    rec: dict[str, Any] = {}
    for name in ("instruction", "response"):
        col = getattr(cols, name)
        value = row.get(col)
        if value is None:
            return Quarantine(where, f"missing column '{col}'", row)
        if not isinstance(value, str):
            return Quarantine(where, f"column '{col}' is {type(value).__name__}, not text", row)
        if not value.strip():
            return Quarantine(where, f"column '{col}' is empty", row)
        if "\ufffd" in value:
            return Quarantine(where, f"column '{col}' has bytes that are not valid UTF-8", row)
        rec[name] = value.strip()
    extra_input = row.get(cols.input)
    rec["input"] = extra_input.strip() if isinstance(extra_input, str) else ""
    src = row.get(cols.source)
    rec["source"] = str(src) if src is not None else ""
    rid = row.get(cols.id)
    rec["id"] = str(rid) if rid not in (None, "") else stable_id(rec["instruction"], rec["response"])
    return rec


def parse_jsonl_line(raw: bytes, where: str, cols: Columns | None = None) -> dict | Quarantine | None:
    """Parse one raw JSONL line; None for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Quarantine(where, f"not valid UTF-8 (byte {exc.start})",
                          raw.decode("utf-8", errors="replace"))
    if not text.strip():
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return Quarantine(where, f"malformed JSON: {exc.msg} at column {exc.colno}", text.rstrip("\n"))
    return validate_row(row, where, cols)


def prompt_text(record: dict) -> str:
    """The user turn: instruction plus optional input, as the chat template sees it."""
    extra = record.get("input") or ""
    return f"{record['instruction']}\n\n{extra}" if extra else record["instruction"]
