"""How tests know that a process they caused runs, and that it is gone: its own report, never its name.

A process reports to ``PidReports`` (an abstract Unix socket: no file, so it works from the sandbox,
which lets a smoke test write nowhere outside); the kernel tells its pid as this process sees it
(SO_PEERCRED), even from the sandbox's PID namespace, and the end of its connection tells that every
process holding it died. Waits are polls with generous deadlines (the suite must hold on a loaded
2-core machine), never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

LONG = 300.0  # seconds a test may wait for something that takes a moment on an idle machine


class PidReports:
    """Where processes report that they run; see the module's docstring."""

    def __init__(self) -> None:
        self.name = f"awrepro-test-{uuid.uuid4().hex}"
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind("\0" + self.name)
        self.server.listen(64)
        self.conns: list[socket.socket] = []
        self.pids: list[int] = []

    def wait(self, count: int, timeout: float = LONG) -> list[int]:
        """The pids of the first ``count`` reporters, once they all have reported."""
        deadline = time.monotonic() + timeout
        while len(self.conns) < count:
            self.server.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                raise AssertionError(f"only {len(self.conns)} of {count} processes reported: {self.pids}") from None
            self.conns.append(conn)
            self.pids.append(struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0])
        return sorted(self.pids[:count])

    def reported(self, count: int) -> bool:
        """Whether ``count`` processes reported by now (a poll; ``wait`` blocks)."""
        try:
            self.wait(count, timeout=0)
        except AssertionError:
            return False
        return True

    def gone(self, timeout: float = 60.0) -> bool:
        """True once every reporter's connection ended (all holders died); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if conn.recv(1) != b"":
                    return False
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        for pid in self.pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for sock in (*self.conns, self.server):
            sock.close()


def pid_sleeper(ready: PidReports, *, python: str = "python", seconds: int = 300, touch: str = "") -> str:
    """A shell command: a Python process that reports to ``ready``, then creates the file ``touch``
    (if given; ``$VARIABLES`` in it are expanded), then sleeps ``seconds``."""
    then = f"open(os.path.expandvars(\"{touch}\"), \"w\"); " if touch else ""
    return (f"{python} -c 'import os, socket, time; s = socket.socket(socket.AF_UNIX); "
            f"s.connect(\"\\0{ready.name}\"); {then}time.sleep({seconds})'")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for a reaper that may not come)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` in the process tree (parents read from /proc/*/stat), now."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return sorted(found)


def wait_until(condition: Callable[[], object], timeout: float = LONG, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def wait_for(condition: Callable[[], object], what: str, timeout: float = LONG, interval: float = 0.02) -> None:
    """``wait_until``, failing the test with ``what`` it waited for."""
    assert wait_until(condition, timeout, interval), f"timed out waiting for {what}"


@pytest.fixture
def pid_reports() -> Iterator[Callable[[], PidReports]]:
    """Makes ``PidReports``, closed (and what reported killed) at the end of the test."""
    made: list[PidReports] = []

    def make() -> PidReports:
        made.append(PidReports())
        return made[-1]

    yield make
    for reports in made:
        reports.close()
