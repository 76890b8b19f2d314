"""Find the line of a key path in TOML text (tomllib reports values, not positions)."""

from __future__ import annotations

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


def find_line(text: str, loc: Sequence[str]) -> int | None:
    """The line that best shows ``loc``: the key itself, else where its table starts, else its parent."""
    wanted = tuple(loc)
    records = list(_records(text))
    for path, number in records:
        if path == wanted:
            return number
    for path, number in records:
        if path[: len(wanted)] == wanted:
            return number
    best: tuple[int, int] | None = None
    for path, number in records:
        if wanted[: len(path)] == path and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None
