"""Errors that awrepro reports to the user.

    AwreproError                   anything awrepro can explain in one line (exit 2 unless set)
    ├── UsageError                 bad command-line input: unknown id, bad option value
    ├── InvalidRegistryError       the registry file is unreadable or invalid (every problem listed)
    ├── FetchError                 code could not be brought into the cache
    │   └── UnsafeSourceError      a URL, archive member or path that would escape
    ├── EnvSetupError              an environment could not be built
    └── EntrySkipped               an entry cannot be checked here (no interpreter, no GPU): not a failure

Only ``cli.py`` catches them. A failing smoke test is data, not an exception.
"""

from __future__ import annotations

from collections.abc import Sequence

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
