"""Paths taken from a registry or a repository, resolved the way the OS will follow them.

The schema refuses absolute paths and ``..``; a repository can still hold a symlink (``subdir ->
/etc``, ``cwd -> ../..``) that leads out, and a patch can name ``../file``. Every such path
(``code.subdir``, ``code.sparse``, ``env.requirements_file``, the files a patch changes,
``smoke.cwd``, ``smoke.static.cwd``) is resolved here, symlinks followed, and refused unless it
stays inside the checkout, before anything runs there. Each refusal names the registry key.
"""

from __future__ import annotations

import os
from pathlib import Path

from awrepro.errors import AwreproError, UnsafeSourceError


def inside(tree: Path, base: Path, relative: str, what: str,
           error: type[AwreproError] = UnsafeSourceError) -> Path:
    """``base / relative`` resolved (symlinks followed); ``error`` unless it stays inside ``tree``.

    ``what`` names the path for the message: its registry key (``code.subdir``)."""
    real_tree = Path(os.path.realpath(tree))
    resolved = Path(os.path.realpath(base / relative))
    if resolved != real_tree and not resolved.is_relative_to(real_tree):
        raise error(f"refusing {what} {relative!r}: it leads outside the checkout (to {resolved})")
    return resolved


def check_sparse(tree: Path, sparse: tuple[str, ...]) -> None:
    """Refuse a sparse folder (``!folder`` too) that leads outside ``tree`` once it is checked out."""
    for index, folder in enumerate(sparse):
        inside(tree, tree, folder.removeprefix("!"), f"code.sparse.{index}")
