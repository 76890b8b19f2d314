"""Building the cache's git entries: mirrors, checkouts at a pin, working copies.

Everything is built aside and renamed into place under a lock, with a marker written last
(``staging.py``), so a run killed at any moment leaves nothing that a later run trusts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from awrepro import git, locks, process
from awrepro.cache import Cache
from awrepro.errors import FetchError, space_in
from awrepro.model import ArchiveCode, Code, GitCode, Implementation
from awrepro.paths import check_sparse
from awrepro.sources import (
    FetchOptions,
    sparse_paths,
    head_of,
    mirror_path,
    read_patches,
    sparse_wanted,
    upstream_of,
)
from awrepro.staging import MARKER, aside, apply_patches, replace_dir


def _set_sparse(work: Path, code: GitCode) -> None:
    paths = sparse_paths(code)
    if not paths:
        return
    if not any(p.startswith("!") for p in paths):
        git.checked(["sparse-checkout", "set", "--cone", *paths], what="git sparse-checkout", cwd=work)
        return
    # Leaving folders out needs git's pattern mode: top-level files, the folders, then the exclusions.
    patterns = ["/*", "!/*/", *(f"/{p}/" for p in paths if not p.startswith("!")),
                *(f"!/{p[1:]}/" for p in paths if p.startswith("!"))]
    git.checked(["sparse-checkout", "set", "--no-cone", *patterns], what="git sparse-checkout", cwd=work)


def ensure_commit(cache: Cache, code: GitCode, options: FetchOptions, log_path: Path | None = None) -> Path:
    """The bare mirror of ``code.git`` holding ``code.commit``, fetched if needed (under the mirror's lock)."""
    mirror = mirror_path(cache, code.git)
    source, allow_file = upstream_of(code.git, options)
    with space_in(mirror, FetchError), locks.locked(mirror.with_name(mirror.name + ".lock")):
        if not (mirror / "HEAD").is_file():
            _create_bare(mirror)
        if not git.has_pin(mirror, code.commit):
            _remove_stale_git_locks(mirror)
            git.remove_temporaries(mirror)  # a killed fetch's objects: its disk may have filled up
            # A sparse entry fetches commits and trees only, then the blobs of its folders:
            # the transfer shrinks with the checkout (and blobs it never needs may be absent).
            git.fetch_commit(mirror, source, code.commit, allow_file=allow_file, log_path=log_path,
                             blobless=bool(code.sparse))
        if git.is_partial(mirror):
            git.make_partial(mirror, source)  # where missing blobs come from, this time
            git.fetch_blobs(mirror, code.commit, sparse_wanted(code), allow_file=allow_file, log_path=log_path)
    return mirror


def _remove_stale_git_locks(mirror: Path) -> None:
    """Lock files of a git killed mid-fetch (``shallow.lock`` would fail every later fetch).
    Stale by now: we hold the mirror's lock, so no git of ours works in it."""
    for name in ("shallow.lock", "packed-refs.lock", "config.lock", "HEAD.lock"):
        (mirror / name).unlink(missing_ok=True)
    for lock in (mirror / "refs").rglob("*.lock"):
        lock.unlink(missing_ok=True)


def _create_bare(mirror: Path) -> None:
    mirror.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=mirror.parent, prefix=f".tmp-{mirror.name}-"))
    try:
        git.init_bare(temporary)
        if mirror.exists():  # a half-made mirror from a killed run: no HEAD, not trusted
            shutil.rmtree(mirror)
        os.rename(temporary, mirror)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def build_checkout(cache: Cache, key: str, final: Path, code: GitCode, mirror: Path,
                   patches: list[tuple[str, bytes]], log_path: Path | None) -> None:
    with space_in(cache.checkouts, FetchError), aside(cache.checkouts, key) as temporary:
        work = temporary / code.repo_name
        materialize(work, code, mirror, log_path)
        apply_patches(work, patches, code, log_path, stage=True)
        head = head_of(work) or "(none)"
        if head != code.commit:
            raise FetchError(f"checkout of {code.url} is at {head[:12]}, not the pinned {code.commit[:12]}")
        marker = {"url": code.url, "commit": code.commit, "sparse": sparse_paths(code),
                  "patches": [name for name, _ in patches], "created": datetime.now(timezone.utc).isoformat()}
        (temporary / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        replace_dir(temporary, final)


def materialize(work: Path, code: GitCode, mirror: Path, log_path: Path | None) -> None:
    """A work tree at the pinned commit whose objects stay in the mirror (git alternates): no copying."""
    git.checked(["init", "-q", str(work)], what="git init")
    (work / ".git" / "objects" / "info" / "alternates").write_text(str(mirror / "objects") + "\n")
    _set_sparse(work, code)
    git.checked(["checkout", "-q", "--detach", code.commit], what=f"checkout of {code.commit[:12]}", cwd=work,
                log_path=log_path)
    check_sparse(work, code.sparse)  # the folders named may be symlinks in the repository
    # git checkout exits 0 even when it could not write a file whose object is unreadable.
    missing = git.checked(["ls-files", "--deleted"], what="git ls-files", cwd=work).splitlines()
    if missing:
        raise FetchError(f"checkout of {code.commit[:12]} is incomplete: {missing[0]} could not be written "
                         f"(objects missing from {mirror}; remove it to fetch again)")
    if code.submodules:
        git.checked(["submodule", "update", "--init", "--recursive", "--depth", "1"], what="git submodule update",
                    cwd=work, log_path=log_path)


# ---------------------------------------------------------------- working copies for the user


def working_copy(dest: Path, impl: Implementation, registry_root: Path, cache: Cache, options: FetchOptions,
                 log_path: Path | None = None) -> Path:
    """A real git checkout of the user's own at ``dest``: objects copied from the cache, origin upstream."""
    if dest.exists() and not dest.is_dir():  # iterdir() below would raise NotADirectoryError
        raise FetchError(f"{dest} exists and is not a folder; choose another --dest")
    if dest.exists() and any(dest.iterdir()):
        raise FetchError(f"{dest} exists and is not empty; choose another --dest")
    code = impl.code
    if isinstance(code, ArchiveCode):
        from awrepro import archives

        unpacked = archives.content_root(archives.ensure(cache, impl, registry_root, options, log_path).tree)
    else:
        mirror = ensure_commit(cache, code, options, log_path)
    # Made beside DEST and renamed into place: a copy that fails (a full disk) leaves DEST as it was.
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-{dest.name}-"))
    try:
        work = temporary / "copy"
        if isinstance(code, ArchiveCode):
            shutil.copytree(unpacked, work, symlinks=True)
        else:
            _git_working_copy(work, mirror, impl, code, registry_root, log_path)
        if dest.exists():
            dest.rmdir()
        os.rename(work, dest)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return dest / code.subdir if isinstance(code, ArchiveCode) and code.subdir else dest


def _git_working_copy(work: Path, mirror: Path, impl: Implementation, code: GitCode, registry_root: Path,
                      log_path: Path | None) -> None:
    """A git checkout of the pin at ``work`` from the cache's ``mirror``, its origin the upstream."""
    git.checked(["init", "-q", str(work)], what="git init")
    partial = git.is_partial(mirror)
    if partial:  # copy the cache's partial clone as one: blobs come from the cache on checkout
        git.make_partial(work, str(mirror))
    source = ["--filter=blob:none", "origin"] if partial else [str(mirror)]
    git.checked(["fetch", "-q", "--depth", "1", *source, code.commit], what="copy from the cache", cwd=work,
                allow_file=True)
    _set_sparse(work, code)
    git.checked(["checkout", "-q", "-b", "awrepro-pin", code.commit], what="git checkout", cwd=work,
                allow_file=True)
    check_sparse(work, code.sparse)
    git.checked(["remote", "set-url" if partial else "add", "--", "origin", code.url], what="git remote", cwd=work)
    apply_patches(work, read_patches(impl, registry_root), code, log_path, stage=False)
