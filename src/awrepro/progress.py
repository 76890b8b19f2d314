"""Live progress for work on many entries: a row per running entry and a bar in a terminal,
one plain line per finished entry everywhere else (CI logs stay free of control codes).

The live view shows each running entry with the time spent in its current stage, the entries
still queued, the run's elapsed time and, from recorded durations, an estimate of the time left.
Workers only call ``stage`` (any label: a stage, or a scheduler's state) and ``done``.
With ``-q`` there is no live view, and only failing entries' lines are printed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, NamedTuple

from awrepro import console

BAR_WIDTH = 40
QUEUED_SHOWN = 5


class _Row(NamedTuple):
    stage: str
    stage_started: float
    started: float  # when the entry started


class Board:
    """Thread-safe: workers call ``stage`` and ``done``; the board draws.

    ``order``: the entries' ids in the order they will start (shown as queued until they do);
    ``estimates``: recorded seconds per entry id, for the time left; ``jobs``: entries at once.
    """

    def __init__(self, total: int, title: str, *, order: Sequence[str] = (),
                 estimates: Mapping[str, float] | None = None, jobs: int = 1) -> None:
        self.total = total
        self.title = title
        self.finished = 0
        self.queued = list(order)
        self.estimates = dict(estimates or {})
        self.jobs = max(1, jobs)
        self.started = time.monotonic()
        self.running: dict[str, _Row] = {}
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
        return (found.stage, time.monotonic() - found.started) if found else None

    def stage(self, entry_id: str, stage: str) -> None:
        now = time.monotonic()
        with self._lock:
            if entry_id in self.queued:
                self.queued.remove(entry_id)
            row = self.running.get(entry_id)
            if row is None:
                self.running[entry_id] = _Row(stage, now, now)
            elif row.stage != stage:
                self.running[entry_id] = _Row(stage, now, row.started)

    def done(self, entry_id: str, line: str, style: str = "", *, failing: bool = False) -> None:
        """The entry finished: drop its row and print its line (above the live rows in a terminal).
        With ``-q`` only a failing entry's line is printed."""
        from awrepro.sanitize import printable

        line = printable(line)  # notes carry third-party output
        with self._lock:
            self.running.pop(entry_id, None)
            if entry_id in self.queued:
                self.queued.remove(entry_id)
            self.finished += 1
            if console.verbosity() < 0 and not failing:
                return
            if self._live is not None:
                self._live.console.print(line, style=style)
            else:
                console.say(line, style)

    def time_left(self, now: float) -> float | None:
        """Seconds left, from recorded durations (their mean for entries never run); None without any."""
        if not self.estimates:
            return None
        typical = sum(self.estimates.values()) / len(self.estimates)
        work = sum(self.estimates.get(entry_id, typical) for entry_id in self.queued)
        work += sum(max(0.0, self.estimates.get(entry_id, typical) - (now - row.started))
                    for entry_id, row in self.running.items())
        return work / min(self.jobs, max(1, len(self.queued) + len(self.running)))

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        rows = Table.grid(padding=(0, 2))
        with self._lock:
            for entry_id, row in sorted(self.running.items()):
                rows.add_row(Text(entry_id, style="bold"), Text(row.stage, style="cyan"),
                             Text(f"{now - row.stage_started:5.1f}s"))
            queued = list(self.queued)
            finished = self.finished
            left = self.time_left(now)
        parts: list[Any] = [rows]
        if queued:
            shown = ", ".join(queued[:QUEUED_SHOWN]) + (f", +{len(queued) - QUEUED_SHOWN} more" if len(queued) > QUEUED_SHOWN else "")
            parts.append(Text(f"queued ({len(queued)}): {shown}", style="dim"))
        bar = Table.grid(padding=(0, 1))
        if console.colored(sys.stdout):
            drawn: Any = ProgressBar(total=max(self.total, 1), completed=finished, width=BAR_WIDTH)
        else:  # without colour rich's bar is one colourless line: draw the done part with other characters
            filled = round(BAR_WIDTH * finished / max(self.total, 1))
            drawn = Text("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
        timing = f"elapsed {_clock(now - self.started)}" + (f", about {_clock(left)} left" if left is not None else "")
        bar.add_row(Text(self.title), drawn, Text(f"{finished}/{self.total}"), Text(timing))
        parts.append(bar)
        return Group(*parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
