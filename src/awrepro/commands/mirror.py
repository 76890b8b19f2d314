"""``awrepro mirror DIR``: bare mirrors of the entries' repositories and archives, for offline machines.

DIR holds ``HOST/OWNER/REPO.git`` (the pinned commits, kept by ``refs/awrepro/pins/*``) and
``archives/SHA256/FILE``. ``awrepro fetch --mirror DIR`` reads it without touching the network;
``git daemon --base-path=DIR`` can serve it to a whole cluster.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from awrepro import archives, checkouts, console, git, sources
from awrepro.model import ArchiveCode
from awrepro.staging import MARKER
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from awrepro.errors import FetchError, space_in
from awrepro.registry import Entry, LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, entries: Sequence[Entry], folder: Path, *, allow_file: bool,
        named: bool) -> int:
    """Mirror each entry. One that cannot be mirrored (no code, an unpinned archive) is an error when
    the user ``named`` it, and skipped with a note under ``--all``; the hint comes only after a success."""
    options = sources.FetchOptions(allow_file=allow_file)
    folder = folder.absolute()
    failed = refused = mirrored = 0
    for entry in entries:
        reason = _unmirrorable(entry)
        if reason:
            if named:
                refused += 1
                console.error(f"{entry.id}: cannot be mirrored: {reason}")
            else:
                console.info(f"{entry.id}: not mirrored: {reason}")
            continue
        try:
            with space_in(folder, FetchError):  # a full mirror folder is this entry's error, not a crash
                where = _mirror_one(registry, cache, entry, folder, options)
        except FetchError as exc:
            failed += 1
            console.error(f"{entry.id}: {exc.message}")
            continue
        mirrored += 1
        console.print_plain(f"{entry.id}  {where}")
    if refused:
        return EXIT_USAGE
    if failed:
        return EXIT_FAILED
    if mirrored:
        console.info(f"Use it offline: awrepro fetch --mirror {folder} ...  (or serve it: git daemon --base-path={folder} --export-all)")
    return EXIT_OK


def _unmirrorable(entry: Entry) -> str:
    """Why there is nothing to copy for ``entry`` ('' when there is)."""
    impl = entry.impl
    if impl is None:
        return entry.why_not_checked()
    if isinstance(impl.code, ArchiveCode) and not impl.code.sha256:
        return "an unpinned archive (no sha256): awrepro does not trust or copy it"
    return ""


def _mirror_one(registry: LoadedRegistry, cache: Cache, entry: Entry, folder: Path, options: sources.FetchOptions) -> Path:
    impl = entry.impl
    assert impl is not None
    code = impl.code
    if isinstance(code, ArchiveCode):
        checkout = archives.ensure(cache, impl, registry.root, options)
        stored = next(p for p in checkout.tree.parent.iterdir() if p.is_file() and p.name != MARKER)
        target = archives.mirror_archive_path(folder, code.sha256 or "", code.archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stored, target)
        return target
    cached = checkouts.ensure_commit(cache, code, options)
    target = folder / f"{sources.url_path(code.url)}.git"
    if not (target / "HEAD").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        git.init_bare(target)
        (target / "git-daemon-export-ok").touch()
    if git.is_partial(cached):
        # The cache holds only the blobs of the entry's sparse folders: so will the mirror.
        git.fetch_commit(target, str(cached), code.commit, allow_file=True, blobless=True)
        git.fetch_blobs(target, code.commit, sources.sparse_wanted(code), allow_file=True)
    else:
        pin = f"refs/awrepro/pins/{code.commit}"
        git.checked(["fetch", "-q", str(cached), f"{pin}:{pin}"], what=f"copying {code.url} into the mirror",
                    cwd=target, allow_file=True)
    os.utime(target)
    return target
