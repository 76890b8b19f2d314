"""Find the line of a key path in TOML text (tomllib reports values, not positions).

The text is indexed once (one pass over its lines) and the index is kept for the last texts
seen, so locating every one of thousands of problems costs a few dictionary lookups each.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence

_HEADER_RE = re.compile(r"^\s*\[\[?\s*(?P<path>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"""^\s*(?P<key>(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART_RE = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART_RE.findall(key))


def _records(text: str) -> Iterator[tuple[tuple[str, ...], int]]:
    """Yield (full key path, 1-based line) for every table header and key, skipping multi-line strings."""
    table: tuple[str, ...] = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            table = _split_key(header.group("path"))
            yield table, number
            continue
        key = _KEY_RE.match(line)
        if key:
            yield table + _split_key(key.group("key")), number
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
                break


class _Index:
    """First line of each exact key path, and first line of any path below each prefix."""

    def __init__(self, text: str) -> None:
        self.exact: dict[tuple[str, ...], int] = {}
        self.below: dict[tuple[str, ...], int] = {}
        for path, number in _records(text):
            self.exact.setdefault(path, number)
            for depth in range(len(path) + 1):
                self.below.setdefault(path[:depth], number)

    def find(self, wanted: tuple[str, ...]) -> int | None:
        if wanted in self.exact:
            return self.exact[wanted]
        if wanted in self.below:
            return self.below[wanted]
        for depth in range(len(wanted) - 1, 0, -1):  # the deepest table or key above it
            if wanted[:depth] in self.exact:
                return self.exact[wanted[:depth]]
        return None


@functools.lru_cache(maxsize=4)
def _index(text: str) -> _Index:
    return _Index(text)


def find_line(text: str, loc: Sequence[str]) -> int | None:
    """The line that best shows ``loc``: the key itself, else where its table starts, else its parent."""
    return _index(text).find(tuple(loc))
