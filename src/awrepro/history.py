"""Results history: one SQLite row per entry per run, in ``<cache>/results.db`` (or ``--db``).

SQLite in WAL mode with a busy timeout lets concurrent runs write without corrupting it.
No ``from __future__ import annotations``: NamedTuple would compile each string annotation at start-up.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import sqlite3

    from awrepro.errors import UsageError
    from awrepro.results import Result

# The schema of awrepro 0.1.0 ("version 0"). Never edit it: change the schema with a migration.
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


def _v1_time_order(conn: "sqlite3.Connection") -> None:
    """Records are ordered by when they finished (runs overlap, so run ids are not time order):
    a sortable timestamp, filled in for the records of earlier versions from their ISO text."""
    conn.execute("ALTER TABLE results ADD COLUMN finished REAL NOT NULL DEFAULT 0")
    conn.execute("UPDATE results SET finished = (julianday(finished_at) - 2440587.5) * 86400.0")
    conn.execute("CREATE INDEX results_by_time ON results(entry_id, finished, run_id)")


def _v2_spec_and_logs(conn: "sqlite3.Connection") -> None:
    """What each result ran against (the digest of the entry's resolved spec, for ``--changed``)
    and the folder of its stage logs (for ``log`` and ``show``, passed entries too). Unknown
    (NULL) for earlier records: such an entry counts as changed, its logs as not recorded."""
    conn.execute("ALTER TABLE results ADD COLUMN spec_digest TEXT")
    conn.execute("ALTER TABLE results ADD COLUMN log_dir TEXT")


# Schema migrations, oldest first: MIGRATIONS[N] brings a database from version N (SQLite's
# `PRAGMA user_version`) to N + 1, in the same transaction as the version bump, so a database is
# never half-migrated and every recorded result is kept. A new database gets SCHEMA, then all of them.
# To change the schema, append one function here (never edit one that shipped), and add the new
# column to Record (and to what `record` stores) if it is read back.
MIGRATIONS: tuple[Callable[["sqlite3.Connection"], None], ...] = (_v1_time_order, _v2_spec_and_logs)
SCHEMA_VERSION = len(MIGRATIONS)

# Newest first: by the time a record finished, then by run (two records of one second).
_NEWEST_FIRST = "finished DESC, run_id DESC"


class Record(NamedTuple):
    """One entry's result in one run, as stored. Fields are the columns read back, in order."""

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
    finished: float  # seconds since the epoch: what records are ordered by
    spec_digest: str | None = None  # spec.spec_digest of the entry as it ran
    log_dir: str | None = None  # the folder of its stage logs in this run


_COLUMNS = ", ".join(Record._fields)


@contextmanager
def connect(path: Path, *, write: bool = False) -> Iterator["sqlite3.Connection"]:
    """The database at ``path``, with every fault turned into one message naming the file and the way out.

    With ``write`` (a command that records results) it is created or migrated to the current schema,
    and checked for damage and for being writable, so that the command stops before its work, not
    after it. Without, the existing database is only read (see ``_reading``).
    """
    import sqlite3  # only when there is a database: `list` without history skips the import

    from awrepro.errors import UsageError

    if not write:
        try:
            with _reading(path) as conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise database_error(path, exc) from None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the results database {path}: {exc}", hint=_fresh_start(path)) from None
    try:
        try:
            _prepare(conn, path)
            _check_writable(conn, path)
        except sqlite3.DatabaseError as exc:
            raise database_error(path, exc) from None
        yield conn
    except sqlite3.DatabaseError as exc:
        raise database_error(path, exc) from None
    finally:
        conn.close()


@contextmanager
def _reading(path: Path) -> Iterator["sqlite3.Connection"]:
    """The existing database, read only: no lock taken, no file made, nothing migrated where it
    cannot be written (a read-only cache). A database of an older schema is migrated in place
    where it can be written, as a newer awrepro does; elsewhere a private copy is migrated and read."""
    from awrepro import dbfile

    with dbfile.for_reading(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            yield conn
            return
    if version > SCHEMA_VERSION:
        raise _newer(path, version)
    from awrepro.cache import unwritable

    if unwritable(path.parent) is None:
        with _migrated(path, path) as conn:
            yield conn
        return
    with dbfile.private_copy(path) as copy, _migrated(copy, path) as conn:
        yield conn


@contextmanager
def _migrated(path: Path, shown: Path) -> Iterator["sqlite3.Connection"]:
    """A read-write connection to ``path``, migrated to the current schema (messages name ``shown``)."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        _prepare(conn, shown)
        yield conn
    finally:
        conn.close()


def database_error(path: Path, exc: Exception) -> "UsageError":
    from awrepro.errors import UsageError

    if "readonly" in str(exc) or "read-only" in str(exc):
        return UsageError(f"cannot write to the results database {path}: it is read-only ({exc})",
                          hint=f"Make it writable, or record into another one: --db PATH (or $AWREPRO_DB).")
    import sqlite3

    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:  # the disk is full, not the database damaged
        return UsageError(f"cannot write to the results database {path}: no space left on device in {path.parent}",
                          hint="Free some space there (awrepro gc removes what no registry needs), or record into "
                               "another one: --db PATH (or $AWREPRO_DB).")
    return UsageError(f"cannot use the results database {path}: {exc}", hint=_fresh_start(path))


def _fresh_start(path: Path) -> str:
    return (f"To start a new history, move it away (mv {path} {path}.broken; awrepro makes a new one), "
            "or use another one: --db PATH (or $AWREPRO_DB).")


def _prepare(conn: "sqlite3.Connection", path: Path) -> None:
    """WAL mode, the tables, and the migrations this database lacks. Switching a new database to
    WAL fails at once with "database is locked" (no busy wait) when another process opens it at
    the same moment: retry a while."""
    import sqlite3

    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                _migrate(conn, path)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _migrate(conn: "sqlite3.Connection", path: Path) -> None:
    """Bring the database to SCHEMA_VERSION in one transaction (another process may be doing the same)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        if version == 0:
            for statement in SCHEMA.split(";"):  # executescript would commit the transaction
                if statement.strip():
                    conn.execute(statement)
        for migration in MIGRATIONS[version:]:
            migration(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _newer(path: Path, version: int) -> "UsageError":
    from awrepro.errors import UsageError

    return UsageError(f"the results database {path} was written by a newer awrepro (schema {version}; "
                      f"this one knows up to {SCHEMA_VERSION})",
                      hint="Upgrade awrepro, or use another database: --db PATH (or $AWREPRO_DB).")


def _check_writable(conn: "sqlite3.Connection", path: Path) -> None:
    """Damage that opening does not notice (pages of the tables) and a file that cannot be written."""
    from awrepro.errors import UsageError

    problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise UsageError(f"the results database {path} is damaged: {problems[0]}", hint=_fresh_start(path))
    conn.execute("BEGIN IMMEDIATE")  # takes the write lock: fails at once on a read-only file
    conn.execute("PRAGMA user_version = " + str(SCHEMA_VERSION))
    conn.execute("COMMIT")


def _newest_per_entry(conn: "sqlite3.Connection", where: str = "", params: tuple[object, ...] = ()) -> dict[str, Record]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM (SELECT r.*, ROW_NUMBER() OVER "
        f"(PARTITION BY r.entry_id ORDER BY r.finished DESC, r.run_id DESC) AS n FROM results r {where}) WHERE n = 1",
        params,
    ).fetchall()
    return {row[1]: Record(*row) for row in rows}


def latest(path: Path) -> dict[str, Record]:
    """The newest record of every entry; empty when there is no history yet."""
    if not path.exists():
        return {}
    with connect(path) as conn:
        return _newest_per_entry(conn)


def entry_history(path: Path, entry_id: str, limit: int = 50) -> list[Record]:
    """An entry's records, newest first."""
    if not path.exists():
        return []
    with connect(path) as conn:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM results WHERE entry_id = ? ORDER BY {_NEWEST_FIRST} LIMIT ?",
            (entry_id, limit),
        ).fetchall()
    return [Record(*row) for row in rows]


def now_iso() -> str:
    return _iso(time.time())


def _iso(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def start_run(conn: "sqlite3.Connection", registry: str) -> int:
    from awrepro import __version__

    cursor = conn.execute("INSERT INTO runs (started_at, registry, awrepro_version) VALUES (?, ?, ?)",
                          (now_iso(), registry, __version__))
    return int(cursor.lastrowid or 0)


def record(conn: "sqlite3.Connection", run_id: int, result: "Result", spec_digest: str | None = None) -> None:
    finished = time.time()
    log_dir = str(Path(result.stages[0].log_path).parent) if result.stages else None
    row = Record(run_id, result.full_id, result.status, result.level, result.failed_stage, result.duration,
                 result.note, result.commit, result.env_key, result.log_path, _iso(finished), finished,
                 spec_digest, log_dir)
    conn.execute(f"INSERT OR REPLACE INTO results ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)


def finish_run(conn: "sqlite3.Connection", run_id: int, *, interrupted: bool) -> None:
    conn.execute("UPDATE runs SET finished_at = ?, interrupted = ? WHERE id = ?", (now_iso(), int(interrupted), run_id))


def previous(conn: "sqlite3.Connection", run_id: int) -> dict[str, Record]:
    """For each entry recorded in run ``run_id``, its record just before that one in time
    (from any run: a `check ID` may have finished while this run was going)."""
    return _newest_per_entry(
        conn,
        "JOIN results cur ON cur.entry_id = r.entry_id AND cur.run_id = ? "
        "WHERE r.run_id != cur.run_id AND (r.finished, r.run_id) < (cur.finished, cur.run_id)",
        (run_id,),
    )


def durations(conn: "sqlite3.Connection") -> dict[str, float]:
    """Each entry's newest recorded duration, for scheduling longest-first and balancing shards."""
    return {entry: record.duration for entry, record in _newest_per_entry(conn).items()}


def all_records(path: Path) -> dict[str, list[Record]]:
    """Every entry's records, newest first."""
    if not path.exists():
        return {}
    with connect(path) as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM results ORDER BY {_NEWEST_FIRST}").fetchall()
    grouped: dict[str, list[Record]] = {}
    for row in rows:
        grouped.setdefault(row[1], []).append(Record(*row))
    return grouped


def streak(runs: list[Record]) -> list[Record]:
    """The newest runs that share the latest status (``runs`` newest first, by time)."""
    same = []
    for record in runs:
        if record.status != runs[0].status:
            break
        same.append(record)
    return same
