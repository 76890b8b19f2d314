"""Cross-process locks on files in the cache (POSIX ``flock``).

The kernel drops a lock when its holder dies, even by ``kill -9``, so a crashed run never
leaves a lock that blocks the next one. (filelock does the same, but costs ~35 ms to import
on a path whose start-up is benchmarked.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from awrepro import cancel


_POLL_SECONDS = 0.1


@contextmanager
def _flocked(path: Path, operation: int) -> Iterator[bool]:
    """Hold ``flock(operation)`` on ``path`` (created if needed); yields False if a non-blocking try failed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if operation & fcntl.LOCK_NB:
            try:
                fcntl.flock(fd, operation)
            except BlockingIOError:
                yield False
                return
        else:
            _wait_for(fd, operation)
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def _wait_for(fd: int, operation: int) -> None:
    """A blocking flock cannot be interrupted from another thread: poll, and give up on Ctrl-C."""
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if cancel.requested.wait(_POLL_SECONDS):
                raise KeyboardInterrupt from None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block."""
    with _flocked(path, fcntl.LOCK_EX):
        yield


@contextmanager
def shared(path: Path) -> Iterator[None]:
    """Hold a shared lock on ``path``: many holders at once, but never beside an exclusive one."""
    with _flocked(path, fcntl.LOCK_SH):
        yield


def exclusive_or_none(path: Path) -> AbstractContextManager[bool]:
    """Try for an exclusive lock without waiting; the context yields whether it was taken."""
    return _flocked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
