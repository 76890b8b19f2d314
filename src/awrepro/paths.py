"""Paths taken from a registry or a repository, resolved the way the OS will follow them.

The schema refuses absolute paths and ``..``; a repository can still hold a symlink (``subdir ->
/etc``, ``cwd -> ../..``) that leads out. Every such path is resolved here, symlinks followed,
and refused unless it stays inside the checkout, before anything runs there.
"""

from __future__ import annotations

import os
from pathlib import Path

from awrepro.errors import AwreproError, UnsafeSourceError


def inside(tree: Path, base: Path, relative: str, what: str,
           error: type[AwreproError] = UnsafeSourceError) -> Path:
    """``base / relative`` resolved (symlinks followed); ``error`` unless it stays inside ``tree``."""
    real_tree = Path(os.path.realpath(tree))
    resolved = Path(os.path.realpath(base / relative))
    if resolved != real_tree and not resolved.is_relative_to(real_tree):
        raise error(f"refusing {what} {relative!r}: it leads outside the checkout (to {resolved})")
    return resolved


def check_inside(tree: Path, relatives: list[tuple[str, str]], base: Path | None = None) -> None:
    """Refuse the first of ``(what, path)`` that leads outside ``tree`` (paths start at ``base``)."""
    for what, relative in relatives:
        inside(tree, base or tree, relative, what)
