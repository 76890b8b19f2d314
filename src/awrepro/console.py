"""All terminal output: one stdout and one stderr console, and small display helpers.

Markup is off everywhere: ids, paths and commands can contain '[' and must print as they are.
When stdout is not a terminal (or NO_COLOR is set) output is plain: no colour, no control codes.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_PLAIN_WIDTH = 200  # wide enough that a pipe or CI log never wraps a table row

_verbosity = 0


def set_verbosity(level: int) -> None:
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


def _make(stream: Any) -> Console:
    from rich.console import Console

    is_tty = stream.isatty()
    width = None if is_tty or os.environ.get("COLUMNS") else _PLAIN_WIDTH
    return Console(
        file=stream,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not is_tty,
        width=width,
        no_color=not is_tty or None,
    )


def out() -> Console:
    """The console for results (stdout). Made per call so tests can swap sys.stdout."""
    return _make(sys.stdout)


def err() -> Console:
    """The console for messages (stderr)."""
    return _make(sys.stderr)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_plain(text: str = "") -> None:
    """Print text as it is, no styling at all (JSON, paths)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    err().print(f"error: {message}", style="bold red")


def warning(message: str) -> None:
    if _verbosity >= 0:
        err().print(f"warning: {message}", style="yellow")


def info(message: str) -> None:
    if _verbosity >= 0:
        err().print(message)


def debug(message: str) -> None:
    if _verbosity > 0:
        err().print(message, style="dim")


def success(message: str) -> None:
    if _verbosity >= 0:
        out().print(message, style="green")
