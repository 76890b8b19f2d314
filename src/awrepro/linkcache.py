"""Link results kept for a while: ``<cache>/links.db`` (SQLite, a file of its own).

Only results that are good news (``ok``, ``redirected``) are kept, for ``ttl`` seconds: a
broken link is asked again on every run, so a fixed one is seen at once.
"""

from __future__ import annotations

import sqlite3
import time
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
    def __init__(self, path: Path, ttl: float) -> None:
        self.ttl = ttl
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def get(self, url: str) -> Outcome | None:
        if self.ttl <= 0:
            return None
        row = self._db.execute("SELECT status, http_status, final_url, suggestion, note, checked_at FROM links "
                               "WHERE url = ?", (url,)).fetchone()
        if row is None or time.time() - row[5] > self.ttl or row[0] not in CACHEABLE:
            return None
        return Outcome(row[0], row[1], row[2], row[3], row[4])

    def put(self, url: str, outcome: Outcome) -> None:
        if outcome.status not in CACHEABLE:
            self._db.execute("DELETE FROM links WHERE url = ?", (url,))
        else:
            self._db.execute("INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (url, outcome.status, outcome.http_status, outcome.final_url, outcome.suggestion,
                              outcome.note, time.time()))
        self._db.commit()

    def close(self) -> None:
        self._db.close()
