"""Results history: one SQLite row per entry per run, in ``<cache>/results.db`` (or ``--db``).

SQLite in WAL mode with a busy timeout lets concurrent runs write without corrupting it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    registry TEXT NOT NULL,
    awrepro_version TEXT NOT NULL,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    entry_id TEXT NOT NULL,
    status TEXT NOT NULL,
    level TEXT,
    stage TEXT,
    duration REAL NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    commit_sha TEXT,
    env_key TEXT,
    log_path TEXT,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (run_id, entry_id)
);
CREATE INDEX IF NOT EXISTS results_by_entry ON results(entry_id, run_id);
"""


@dataclass(frozen=True)
class Record:
    """One entry's result in one run, as stored."""

    run_id: int
    entry_id: str
    status: str
    level: str | None
    stage: str | None
    duration: float
    note: str
    commit_sha: str | None
    env_key: str | None
    log_path: str | None
    finished_at: str


_COLUMNS = "run_id, entry_id, status, level, stage, duration, note, commit_sha, env_key, log_path, finished_at"


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        yield conn
    finally:
        conn.close()


def latest(path: Path) -> dict[str, Record]:
    """The newest record of every entry; empty when there is no history yet."""
    if not path.is_file():
        return {}
    with connect(path) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM results r WHERE run_id = "
            "(SELECT MAX(run_id) FROM results WHERE entry_id = r.entry_id)"
        ).fetchall()
    return {row[1]: Record(*row) for row in rows}


def entry_history(path: Path, entry_id: str, limit: int = 50) -> list[Record]:
    """An entry's records, newest first."""
    if not path.is_file():
        return []
    with connect(path) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM results WHERE entry_id = ? ORDER BY run_id DESC LIMIT ?",
            (entry_id, limit),
        ).fetchall()
    return [Record(*row) for row in rows]
