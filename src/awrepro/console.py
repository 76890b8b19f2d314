"""All terminal output: one stdout and one stderr console, and small display helpers.

Markup is off everywhere: ids, paths and commands can contain '[' and must print as they are.
When stdout is not a terminal (or NO_COLOR is set) output is plain: no colour, no control codes.
Colour follows ``--color auto|always|never``; with ``auto``, ``NO_COLOR`` turns it off and
``FORCE_COLOR`` on (colour in a CI log, which is no terminal), else a terminal gets it. A live
display (moving rows, a bar) needs a real terminal whatever the colour.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_PLAIN_WIDTH = 200  # wide enough that a pipe or CI log never wraps a table row

_verbosity = 0
COLOR_MODES = ("auto", "always", "never")
_color = "auto"


def set_verbosity(level: int) -> None:
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


class ClosedPipe(Exception):
    """The reader of stdout went away (`awrepro list | head -1`): the command ends quietly (cli.py)."""


def set_color(mode: str) -> None:
    global _color
    _color = mode


def colored(stream: Any) -> bool:
    """Whether output on ``stream`` gets colour (see the module's docstring)."""
    if _color != "auto":
        return _color == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(stream.isatty())


@functools.lru_cache(maxsize=8)  # one Console per stream and colour: tests swap sys.stdout, so key on the stream itself
def _make(stream: Any, color: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits 1, the code of a failed check
            self.quiet = True
            raise ClosedPipe

    is_tty = stream.isatty()
    width = None if is_tty or os.environ.get("COLUMNS") else _PLAIN_WIDTH
    return _Console(
        file=stream,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not is_tty,
        width=width,
        force_terminal=True if color and not is_tty else None,  # colour in a CI log, when asked
        no_color=not color or None,
    )


def out() -> Console:
    """The console for results (stdout). Made per call so tests can swap sys.stdout."""
    return _make(sys.stdout, colored(sys.stdout))


def err() -> Console:
    """The console for messages (stderr)."""
    return _make(sys.stderr, colored(sys.stderr))


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_plain(text: str = "") -> None:
    """Print text as it is, no styling at all (JSON, paths)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise ClosedPipe from None


def _say(stream: Any, message: str, style: str) -> None:
    """Styled through rich in a terminal; written as it is elsewhere (and without importing rich).
    Messages carry text from outside (git's errors, smoke-test output): controls are shown escaped."""
    from awrepro.sanitize import printable

    message = "\n".join(printable(line) for line in message.split("\n"))
    if stream.isatty() or (style and colored(stream)):
        _make(stream, colored(stream)).print(message, style=style)
        return
    try:
        stream.write(message + "\n")
        stream.flush()
    except BrokenPipeError:
        raise ClosedPipe from None


def error(message: str) -> None:
    _say(sys.stderr, f"error: {message}", "bold red")


def warning(message: str) -> None:
    if _verbosity >= 0:
        _say(sys.stderr, f"warning: {message}", "yellow")


def info(message: str) -> None:
    if _verbosity >= 0:
        _say(sys.stderr, message, "")


def debug(message: str) -> None:
    if _verbosity > 0:
        _say(sys.stderr, message, "dim")


def say(message: str, style: str = "") -> None:
    """A line of results on stdout (styled in a terminal), whatever the verbosity."""
    _say(sys.stdout, message, style)


def success(message: str) -> None:
    if _verbosity >= 0:
        _say(sys.stdout, message, "green")


@contextmanager
def download_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar for a download in a terminal; a no-op elsewhere. Yields ``advance(nbytes)``."""
    if not sys.stderr.isatty() or _verbosity < 0:
        yield lambda _: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err(), transient=True) as progress:
        task = progress.add_task(label, total=total or None)
        yield lambda n: progress.advance(task, n)
