"""Job records in a local SQLite file: what was submitted where, and the last state seen.

The state column is only ever what a backend reported (with the time it was
asked), never a guess. Records hold env var names, never their values.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, profile TEXT NOT NULL, backend TEXT NOT NULL, backend_id TEXT,
    name TEXT, command TEXT NOT NULL, spec TEXT NOT NULL, info TEXT NOT NULL,
    job_dir TEXT NOT NULL, submitted REAL NOT NULL, state TEXT, checked REAL
)"""
_COLUMNS = ("id", "profile", "backend", "backend_id", "name", "command", "spec", "info",
            "job_dir", "submitted", "state", "checked")
_JSON = ("command", "spec", "info")


def state_dir() -> Path:
    """Where job records and job dirs live: $BUCKLE_STATE_DIR, else ~/.cache/buckle/jobs."""
    env = os.environ.get("BUCKLE_STATE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "buckle" / "jobs"


@dataclass
class JobRecord:
    """One submitted job. `info` holds backend facts (address, pid, file paths), no secrets."""

    id: str
    profile: str
    backend: str
    command: list[str]
    spec: dict[str, Any]
    job_dir: str
    backend_id: str | None = None
    name: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    submitted: float = field(default_factory=time.time)
    state: str | None = None
    checked: float | None = None


class JobStore:
    """The SQLite job table plus one directory per job (logs, scripts, manifests)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else state_dir()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.root / "jobs.sqlite", timeout=30)
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise PermissionError(f"job database in '{self.root}' is not usable: {exc}") from None

    def new_id(self) -> str:
        """A fresh job id like bk-3f9a1c2e, with its directory created."""
        while True:
            job_id = f"bk-{secrets.token_hex(4)}"
            if self.find(job_id) is None:
                self.job_dir(job_id).mkdir(parents=True, exist_ok=True)
                return job_id

    def job_dir(self, job_id: str) -> Path:
        """The directory of one job."""
        return self.root / job_id

    def add(self, rec: JobRecord) -> None:
        """Insert a new record."""
        row = [json.dumps(getattr(rec, c)) if c in _JSON else getattr(rec, c) for c in _COLUMNS]
        with self._db:
            self._db.execute(f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(_COLUMNS))})", row)

    def set_state(self, job_id: str, state: str) -> None:
        """Record the state a backend just reported."""
        with self._db:
            self._db.execute("UPDATE jobs SET state = ?, checked = ? WHERE id = ?",
                             (state, time.time(), job_id))

    def find(self, job_id: str) -> JobRecord | None:
        """The record with this buckle id, or whose backend id is this (if unique)."""
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchall()
        if not rows:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE backend_id = ?",
                                    (job_id,)).fetchall()
        return _record(rows[0]) if len(rows) == 1 else None

    def get(self, job_id: str) -> JobRecord:
        """Like find, but a missing id is a one-line error."""
        rec = self.find(job_id)
        if rec is None:
            raise ValueError(f"no job '{job_id}' in {self.root / 'jobs.sqlite'}; see `buckle jobs`")
        return rec

    def all(self, limit: int | None = None) -> Iterator[JobRecord]:
        """Records, newest first."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs ORDER BY submitted DESC"
        args: tuple = ()
        if limit:
            sql, args = sql + " LIMIT ?", (limit,)
        for row in self._db.execute(sql, args).fetchall():
            yield _record(row)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _record(row: tuple) -> JobRecord:
    data = dict(zip(_COLUMNS, row))
    for key in _JSON:
        data[key] = json.loads(data[key])
    return JobRecord(**data)
