"""Run-directory files: rows keyed by id, rewritten atomically so a crash never loses answered rows."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

STATE = "eval_state.json"


class RowStore:
    """A JSONL file of rows keyed by "id"; `save` rewrites it atomically (tmp + rename)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        raise ValueError(f"{self.path}:{lineno} is not valid JSON; move the file "
                                         f"away or use another --output") from None
                    self.rows[str(row["id"])] = row

    def get(self, rid: str) -> dict[str, Any] | None:
        """The stored row of an id, or None."""
        return self.rows.get(rid)

    def put(self, row: dict[str, Any]) -> None:
        """Insert or replace a row."""
        self.rows[str(row["id"])] = row

    def save(self) -> None:
        """Write all rows (insertion order) atomically."""
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in self.rows.values():
                fh.write(json.dumps(_clean(_ordered(row)), ensure_ascii=False) + "\n")
        tmp.replace(self.path)


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    # texts first and verdicts last, so the file reads top-down
    first = [k for k in ("id", "prompt", "response", "tokens", "reference") if k in row]
    rest = [k for k in row if k not in first and k != "verdicts"]
    return {k: row[k] for k in first + rest + (["verdicts"] if "verdicts" in row else [])}


def _clean(value: Any) -> Any:
    # JSON has no NaN: write null
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, NaN as null."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(_clean(data), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def write_rejected(path: Path, rejected: Iterable[Any]) -> int:
    """Write quarantined input rows (where, why, the raw row); returns how many."""
    lines = [q.to_json() for q in rejected]
    if lines or path.exists():
        path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    return len(lines)


def check_state(out: Path, generation: dict[str, Any], write: bool = True) -> None:
    """Refuse to mix responses made with other generation settings in one output dir.

    Raises:
        ValueError: naming the first setting that differs from the stored one.
    """
    path = out / STATE
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8")).get("generation", {})
        diff = [k for k in generation if old.get(k) != generation[k]]
        if diff:
            k = diff[0]
            raise ValueError(f"output '{out}' holds responses made with {k}={old.get(k)!r}, not "
                             f"{generation[k]!r}; use another --output (or delete it) to start over")
    if write:
        write_json(path, {"generation": generation})
