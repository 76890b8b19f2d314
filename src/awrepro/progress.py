"""Live progress for work on many entries: a row per running entry and a bar in a terminal,
one plain line per finished entry everywhere else (CI logs stay free of control codes)."""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any

from awrepro import console


class Board:
    """Thread-safe: workers call ``stage`` and ``done``; the board draws."""

    def __init__(self, total: int, title: str) -> None:
        self.total = total
        self.title = title
        self.finished = 0
        self.running: dict[str, tuple[str, float]] = {}  # entry id -> (stage, started)
        self._lock = threading.Lock()
        self._live: Any = None
        self._fancy = sys.stdout.isatty() and console.verbosity() >= 0 and total > 0

    def __enter__(self) -> Board:
        if self._fancy:
            from rich.live import Live

            self._live = Live(get_renderable=self._render, console=console.out(), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, tb)

    def running_for(self, entry_id: str) -> tuple[str, float] | None:
        """The stage a running entry is in and its seconds so far; None once it finished or before it started."""
        with self._lock:
            found = self.running.get(entry_id)
        return (found[0], time.monotonic() - found[1]) if found else None

    def stage(self, entry_id: str, stage: str) -> None:
        with self._lock:
            started = self.running.get(entry_id, (stage, time.monotonic()))[1]
            self.running[entry_id] = (stage, started)

    def done(self, entry_id: str, line: str, style: str = "") -> None:
        """The entry finished: drop its row and print its line (above the live rows in a terminal)."""
        from awrepro.sanitize import printable

        line = printable(line)  # notes carry third-party output
        with self._lock:
            self.running.pop(entry_id, None)
            self.finished += 1
            if self._live is not None:
                self._live.console.print(line, style=style)
            else:
                console.print_plain(line)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        rows = Table.grid(padding=(0, 2))
        with self._lock:
            for entry_id, (stage, started) in sorted(self.running.items()):
                rows.add_row(Text(entry_id, style="bold"), Text(stage, style="cyan"), Text(f"{now - started:5.1f}s"))
            finished = self.finished
        bar = Table.grid(padding=(0, 1))
        bar.add_row(Text(self.title), ProgressBar(total=max(self.total, 1), completed=finished, width=40),
                    Text(f"{finished}/{self.total}"))
        return Group(rows, bar)
