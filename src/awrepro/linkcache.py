"""Link results kept for a while: ``<cache>/links.db`` (SQLite, a file of its own).

Only results that are good news (``ok``, ``redirected``) are kept, for ``ttl`` seconds: a
broken link is asked again on every run, so a fixed one is seen at once.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

from awrepro.links import CACHEABLE, Outcome

DEFAULT_TTL = 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    url TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    http_status INTEGER,
    final_url TEXT,
    suggestion TEXT,
    note TEXT NOT NULL,
    checked_at REAL NOT NULL
)
"""


class LinkCache:
    """``writable`` False (a read-only cache): the results already kept are read, nothing is kept."""

    def __init__(self, path: Path, ttl: float, *, writable: bool = True) -> None:
        self.ttl = ttl
        self.writable = writable
        self._db: sqlite3.Connection | None = None
        self._reading: ExitStack | None = None
        if writable:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        elif path.exists():
            from awrepro import dbfile

            self._reading = ExitStack()
            self._db = self._reading.enter_context(dbfile.for_reading(path))

    def get(self, url: str) -> Outcome | None:
        if self.ttl <= 0 or self._db is None:
            return None
        row = self._db.execute("SELECT status, http_status, final_url, suggestion, note, checked_at FROM links "
                               "WHERE url = ?", (url,)).fetchone()
        if row is None or time.time() - row[5] > self.ttl or row[0] not in CACHEABLE:
            return None
        return Outcome(row[0], row[1], row[2], row[3], row[4])

    def put(self, url: str, outcome: Outcome) -> None:
        if self._db is None or not self.writable:
            return
        if outcome.status not in CACHEABLE:
            self._db.execute("DELETE FROM links WHERE url = ?", (url,))
        else:
            self._db.execute("INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (url, outcome.status, outcome.http_status, outcome.final_url, outcome.suggestion,
                              outcome.note, time.time()))
        self._db.commit()

    def close(self) -> None:
        if self._reading is not None:
            self._reading.close()
        elif self._db is not None:
            self._db.close()
