"""Errors that awrepro reports to the user.

    AwreproError                   anything awrepro can explain in one line (exit 2 unless set)
    ├── UsageError                 bad command-line input: unknown id, bad option value
    ├── InvalidRegistryError       the registry file is unreadable or invalid (every problem listed)
    ├── FetchError                 code could not be brought into the cache
    │   └── UnsafeSourceError      a URL, archive member or path that would escape
    ├── EnvSetupError              an environment could not be built
    └── EntrySkipped               an entry cannot be checked here (no interpreter, no GPU): not a failure

Only ``cli.py`` catches them. A failing smoke test is data, not an exception. A full disk is
``OutOfSpace`` (or an ``OSError``) where it happens; ``space_in`` turns it into the stage's error
naming the folder awrepro was writing.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from awrepro.constants import EXIT_USAGE


class AwreproError(Exception):
    """Base class: a problem awrepro can state in one line."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        return [self.message]


class UsageError(AwreproError):
    """Raised for bad command-line input, such as an unknown entry id."""


class InvalidRegistryError(AwreproError):
    """Raised when a registry cannot be read or has problems; carries one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(problems[0] if problems else "invalid registry")
        self.problems = list(problems)

    def lines(self) -> list[str]:
        return self.problems


class FetchError(AwreproError):
    """Raised when an entry's code cannot be fetched."""

    exit_code = 1


class UnsafeSourceError(FetchError):
    """Raised for a transport, archive member or path that is not allowed."""


class EnvSetupError(AwreproError):
    """Raised when an environment cannot be built."""

    exit_code = 1


class EntrySkipped(AwreproError):
    """Raised when an entry cannot be worked on here, with the reason (``needs Python 3.7; none found``)."""

    exit_code = 0


def network_unreachable(url: str, detail: str, *, git: bool) -> FetchError:
    """The network failure, with the ways to work without that network."""
    other_copy = "; or reach a copy of it through git's url.<base>.insteadOf (README: Internal mirrors)" if git else ""
    return FetchError(f"network unreachable: cannot connect to {url} ({detail}); without this network, fetch from "
                      f"an offline mirror with --mirror DIR (made by `awrepro mirror DIR` where it is reachable)"
                      f"{other_copy}")


# The errors of a write that found no room, as the user should read them.
_NO_ROOM = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


class OutOfSpace(Exception):
    """A child (git, an installer, a build step) failed because a disk or quota was full; ``detail``
    is what it said. Not an AwreproError: ``space_in`` names the folder and the stage's error."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def disk_full(exc: BaseException) -> str | None:
    """Why a write failed, when the reason is a full disk or quota (None otherwise)."""
    if isinstance(exc, OutOfSpace):
        return exc.reason
    if isinstance(exc, shutil.Error):  # copytree's: the errors of each file, as text only
        found = disk_full_in(str(exc))
        return found[0] if found else None
    return _NO_ROOM.get(exc.errno) if isinstance(exc, OSError) and exc.errno is not None else None


def disk_full_in(output: str) -> tuple[str, str] | None:
    """(why, the line that says it) when a child's output tells of a full disk or quota; a server's
    own (``remote:``) does not count."""
    for line in output.splitlines():
        lowered = line.lower()
        if lowered.lstrip().startswith("remote:"):
            continue
        for reason in _NO_ROOM.values():  # each reason is the phrase its tools print
            if reason in lowered:
                return reason, line.strip()[:300]
    return None


def raise_if_disk_full(output: str, what: str) -> None:
    """OutOfSpace when ``output`` (of the step ``what``) tells of a full disk: its line, not the last one."""
    found = disk_full_in(output)
    if found:
        raise OutOfSpace(found[0], f"{what} failed: {found[1]}")


@contextmanager
def space_in(folder: Path, error: type[AwreproError]) -> Iterator[None]:
    """A full disk or quota inside the block becomes ``error`` (a fetch or setup error, never a crash)
    naming ``folder``, where the block writes."""
    try:
        yield
    except (OSError, OutOfSpace) as exc:
        reason = disk_full(exc)
        if reason is None:
            raise
        detail = exc.detail if isinstance(exc, OutOfSpace) and exc.detail else ""
        raise error(f"{reason} in {folder}" + (f" ({detail})" if detail else "")) from None
