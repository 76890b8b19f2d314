"""SQLite files opened only to be read: no write, no lock file left, also on a read-only filesystem.

In a folder that can be written, a plain connection that issues only reads: SQLite makes the WAL
files a reader needs (``NAME-wal``, ``NAME-shm``) and removes them when it closes, so the folder is
left as it was (a ``mode=ro`` connection could not remove them: it would leave both behind).
Where the folder cannot be written:

- a ``-shm`` is there (a writer has the database open, or was killed): ``mode=ro`` reads with it;
- there is no journal content (the last writer closed the database, which folds the WAL into the
  file and removes it): ``immutable=1`` reads the file alone, with no lock and no ``-shm``;
- a ``-wal`` or ``-journal`` holds content that cannot be read in place (no ``-shm``): a private
  copy of the file and its journal, in a temporary folder, is read instead, so no recorded result
  is missed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import quote

from awrepro.cache import unwritable

_JOURNALS = ("-wal", "-journal")


@contextmanager
def for_reading(path: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """The existing database at ``path``, to read. Raises sqlite3.Error as SQLite words it."""
    conn: sqlite3.Connection | None
    if unwritable(path.parent) is None:
        conn = _open(path, "mode=rw", timeout)
    else:
        try:
            conn = _open(path, "mode=ro", timeout)
        except sqlite3.OperationalError:
            conn = None  # no WAL index, and none can be made
    if conn is None:
        if any(_has_content(path.with_name(path.name + suffix)) for suffix in _JOURNALS):
            with private_copy(path) as copy, closing(sqlite3.connect(copy, timeout=timeout, isolation_level=None)) as conn:
                yield conn
            return
        conn = _open(path, "immutable=1", timeout)
    with closing(conn):
        yield conn


@contextmanager
def private_copy(path: Path) -> Iterator[Path]:
    """A copy of the database at ``path`` and its journals, in a temporary folder removed afterwards."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="awrepro-db-") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        for suffix in _JOURNALS:
            journal = path.with_name(path.name + suffix)
            if journal.exists():
                shutil.copyfile(journal, copy.with_name(copy.name + suffix))
        yield copy


def _open(path: Path, mode: str, timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(os.fspath(path))}?{mode}", uri=True, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA user_version")  # connect is lazy: this opens the file (and the WAL index)
    except BaseException:
        conn.close()
        raise
    return conn


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
