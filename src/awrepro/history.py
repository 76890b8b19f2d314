"""Results history: one SQLite row per entry per run, in ``<cache>/results.db`` (or ``--db``).

SQLite in WAL mode with a busy timeout lets concurrent runs write without corrupting it.
No ``from __future__ import annotations``: NamedTuple would compile each string annotation at start-up.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import sqlite3

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


class Record(NamedTuple):
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
def connect(path: Path) -> Iterator["sqlite3.Connection"]:
    import sqlite3  # only when there is a database: `list` without history skips the import

    from awrepro.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the results database {path}: {exc}") from None
    try:
        try:
            _prepare(conn)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"cannot use the results database {path}: {exc}") from None
        yield conn
    finally:
        conn.close()


def _prepare(conn: "sqlite3.Connection") -> None:
    """WAL mode and the tables. Switching a new database to WAL fails at once with "database is
    locked" (no busy wait) when another process opens it at the same moment: retry a while."""
    import sqlite3

    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


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


def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_run(conn: "sqlite3.Connection", registry: str) -> int:
    from awrepro import __version__

    cursor = conn.execute("INSERT INTO runs (started_at, registry, awrepro_version) VALUES (?, ?, ?)",
                          (now_iso(), registry, __version__))
    return int(cursor.lastrowid or 0)


def record(conn: "sqlite3.Connection", run_id: int, result: object) -> None:
    r = result  # a results.Result
    conn.execute(
        f"INSERT OR REPLACE INTO results ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, r.full_id, r.status, r.level, r.failed_stage, r.duration, r.note, r.commit,  # type: ignore[attr-defined]
         r.env_key, r.log_path, now_iso()),  # type: ignore[attr-defined]
    )


def finish_run(conn: "sqlite3.Connection", run_id: int, *, interrupted: bool) -> None:
    conn.execute("UPDATE runs SET finished_at = ?, interrupted = ? WHERE id = ?", (now_iso(), int(interrupted), run_id))


def previous(conn: "sqlite3.Connection", before_run: int) -> dict[str, Record]:
    """Each entry's newest record from runs before ``before_run``."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM results r WHERE run_id = "
        "(SELECT MAX(run_id) FROM results WHERE entry_id = r.entry_id AND run_id < ?)",
        (before_run,),
    ).fetchall()
    return {row[1]: Record(*row) for row in rows}


def durations(path: Path) -> dict[str, float]:
    """Each entry's newest recorded duration, for scheduling longest-first and balancing shards."""
    return {entry: record.duration for entry, record in latest(path).items()}


def all_records(path: Path) -> dict[str, list[Record]]:
    """Every entry's records, newest first."""
    if not path.is_file():
        return {}
    with connect(path) as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM results ORDER BY run_id DESC").fetchall()
    grouped: dict[str, list[Record]] = {}
    for row in rows:
        grouped.setdefault(row[1], []).append(Record(*row))
    return grouped
