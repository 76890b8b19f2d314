"""An implementation's code in the cache: a bare mirror per repository, a checkout per pinned commit.

Everything is built in a temporary folder beside its final place and renamed into place
under a lock, with a marker written last, so a run killed at any moment leaves nothing
that a later run trusts. A checkout counts when its marker is there and its HEAD is the pin.
(No ``from __future__ import annotations``: NamedTuple would compile each string annotation.)
"""

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple

from awrepro import git, locks, process
from awrepro.cache import Cache
from awrepro.errors import FetchError
from awrepro.model import Code, Implementation

MARKER = "awrepro.json"


class FetchOptions(NamedTuple):
    """How to reach code: upstream (the default), or only an offline mirror folder."""

    mirror_dir: Path | None = None
    allow_file: bool = False
    verify: bool = False


class Checkout(NamedTuple):
    """Where an implementation's code is, and whether this call had to fetch it."""

    tree: Path  # the repository's work tree (or unpacked archive)
    root: Path  # tree joined with the entry's subdir: where commands run
    fetched: bool


def url_path(url: str) -> str:
    """A readable, filesystem-safe path for a repository URL: ``github.com/allenai/longformer``."""
    text = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url.strip())
    text = re.sub(r"^[^@/]+@", "", text)  # user@ of ssh URLs
    text = text.replace(":", "/", 1) if git.url_scheme(url) == "ssh" and "://" not in url else text
    text = re.sub(r"\.git/?$", "", text.rstrip("/"))
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", part) for part in text.split("/") if part]
    return "/".join("_" if part in (".", "..") else part for part in parts) or "repo"


def mirror_path(cache: Cache, url: str) -> Path:
    return cache.repos / f"{url_path(url)}.git"


def checkout_key(impl: Implementation, patch_texts: list[bytes]) -> str:
    """One checkout per (repository, commit); sparse paths and patches make their own."""
    code = impl.code
    base = f"{url_path(code.url).replace('/', '+')}@{(code.commit or code.sha256 or 'unpinned')[:12]}"
    paths = _sparse_paths(code)
    if not paths and not patch_texts:
        return base
    import hashlib  # not on the common path: a warm fetch of a plain entry starts without it

    digest = hashlib.sha256(json.dumps(paths).encode() + b"".join(hashlib.sha256(p).digest() for p in patch_texts))
    return f"{base}-{digest.hexdigest()[:8]}"


def _sparse_paths(code: Code) -> list[str]:
    """Folders to check out (``!folder`` leaves one out); empty for the whole tree.

    A subdir alone means the whole tree: imports often reach outside it.
    """
    if not code.sparse:
        return []
    return sorted({*(p.strip("/") for p in code.sparse), *([code.subdir.strip("/")] if code.subdir else [])})


def sparse_wanted(code: Code) -> Callable[[str], bool]:
    """Whether a file path is in the entry's sparse checkout: the folders named, and the files
    directly in each of their parent folders (top level included, as git's cone mode has it),
    minus the folders left out."""
    paths = _sparse_paths(code)
    if not paths:
        return lambda path: True
    included = tuple(p + "/" for p in paths if not p.startswith("!"))
    excluded = tuple(p[1:] + "/" for p in paths if p.startswith("!"))
    parents = {""} | {"/".join(p.split("/")[:depth]) for p in included for depth in range(1, p.count("/"))}

    def wanted(path: str) -> bool:
        folder = path.rpartition("/")[0]
        return (path.startswith(included) or folder in parents) and not path.startswith(excluded)

    return wanted


def _set_sparse(work: Path, code: Code) -> None:
    paths = _sparse_paths(code)
    if not paths:
        return
    if not any(p.startswith("!") for p in paths):
        git.checked(["sparse-checkout", "set", "--cone", *paths], what="git sparse-checkout", cwd=work)
        return
    # Leaving folders out needs git's pattern mode: top-level files, the folders, then the exclusions.
    patterns = ["/*", "!/*/", *(f"/{p}/" for p in paths if not p.startswith("!")),
                *(f"!/{p[1:]}/" for p in paths if p.startswith("!"))]
    git.checked(["sparse-checkout", "set", "--no-cone", *patterns], what="git sparse-checkout", cwd=work)


def read_patches(impl: Implementation, registry_root: Path) -> list[tuple[str, bytes]]:
    found = []
    for rel in impl.env.patches:
        try:
            found.append((rel, (registry_root / rel).read_bytes()))
        except OSError as exc:
            raise FetchError(f"patch {rel} cannot be read: {exc.strerror}") from None
    return found


def ensure(cache: Cache, impl: Implementation, registry_root: Path, options: FetchOptions,
           log_path: Path | None = None) -> Checkout:
    """Make sure the implementation's code is in the cache, at its pin; return where it is."""
    if impl.code.kind == "archive":
        from awrepro import archives

        return archives.ensure(cache, impl, registry_root, options, log_path)
    patches = read_patches(impl, registry_root)
    key = checkout_key(impl, [text for _, text in patches])
    final = cache.checkouts / key
    tree = final / impl.code.repo_name
    if _trusted(final, tree, impl, options.verify):
        return Checkout(tree, _root(tree, impl), fetched=False)
    with locks.locked(cache.checkouts / f"{key}.lock"):
        if _trusted(final, tree, impl, options.verify):  # another process built it meanwhile
            return Checkout(tree, _root(tree, impl), fetched=False)
        mirror = ensure_commit(cache, impl.code, options, log_path)
        _build_checkout(cache, key, final, impl, mirror, patches, log_path)
    return Checkout(tree, _root(tree, impl), fetched=True)


def _root(tree: Path, impl: Implementation) -> Path:
    if not impl.code.subdir:
        return tree
    root = tree / impl.code.subdir
    if not root.is_dir():
        raise FetchError(f"subdir {impl.code.subdir} does not exist in {impl.code.url} at {impl.code.commit[:12]}")
    return root


def _trusted(final: Path, tree: Path, impl: Implementation, verify: bool) -> bool:
    """Marker present and HEAD at the pin; with ``verify`` also no tracked file changed or missing."""
    if not (final / MARKER).is_file() or git.head_of(tree) != impl.code.commit:
        return False
    if verify:
        return git.run(["diff", "--quiet"], cwd=tree, timeout=300).ok
    return True


def ensure_commit(cache: Cache, code: Code, options: FetchOptions, log_path: Path | None = None) -> Path:
    """The bare mirror of ``code.git`` holding ``code.commit``, fetched if needed (under the mirror's lock)."""
    assert code.git and code.commit
    mirror = mirror_path(cache, code.git)
    source, allow_file = upstream_of(code.git, options)
    with locks.locked(mirror.with_name(mirror.name + ".lock")):
        if not (mirror / "HEAD").is_file():
            _create_bare(mirror)
        if not git.has_pin(mirror, code.commit):
            _remove_stale_git_locks(mirror)
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


def upstream_of(url: str, options: FetchOptions) -> tuple[str, bool]:
    """Where to fetch ``url`` from: itself, or its copy in the offline mirror folder (never the network)."""
    if options.mirror_dir is None:
        return url, options.allow_file
    local = options.mirror_dir.absolute() / f"{url_path(url)}.git"  # git runs in the cache's mirror, not here
    if not (local / "HEAD").is_file():
        raise FetchError(f"{url} is not in the mirror {options.mirror_dir} (expected {local}); "
                         f"run `awrepro mirror {options.mirror_dir}` where the network is reachable")
    return str(local), True


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


def _build_checkout(cache: Cache, key: str, final: Path, impl: Implementation, mirror: Path,
                    patches: list[tuple[str, bytes]], log_path: Path | None) -> None:
    cache.checkouts.mkdir(parents=True, exist_ok=True)
    remove_leftovers(cache.checkouts, key)
    temporary = Path(tempfile.mkdtemp(dir=cache.checkouts, prefix=f".tmp-{key}-"))
    try:
        work = temporary / impl.code.repo_name
        materialize(work, impl.code, mirror, log_path)
        apply_patches(work, patches, impl.code, log_path, stage=True)
        head = git.head_of(work) or "(none)"
        if head != impl.code.commit:
            raise FetchError(f"checkout of {impl.code.url} is at {head[:12]}, not the pinned {impl.code.commit[:12]}")
        marker = {"url": impl.code.url, "commit": impl.code.commit, "sparse": _sparse_paths(impl.code),
                  "patches": [name for name, _ in patches], "created": datetime.now(timezone.utc).isoformat()}
        (temporary / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        replace_dir(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def materialize(work: Path, code: Code, mirror: Path, log_path: Path | None) -> None:
    """A work tree at the pinned commit whose objects stay in the mirror (git alternates): no copying."""
    assert code.commit
    git.checked(["init", "-q", str(work)], what="git init")
    (work / ".git" / "objects" / "info" / "alternates").write_text(str(mirror / "objects") + "\n")
    _set_sparse(work, code)
    git.checked(["checkout", "-q", "--detach", code.commit], what=f"checkout of {code.commit[:12]}", cwd=work,
                log_path=log_path)
    # git checkout exits 0 even when it could not write a file whose object is unreadable.
    missing = git.checked(["ls-files", "--deleted"], what="git ls-files", cwd=work).splitlines()
    if missing:
        raise FetchError(f"checkout of {code.commit[:12]} is incomplete: {missing[0]} could not be written "
                         f"(objects missing from {mirror}; remove it to fetch again)")
    if code.submodules:
        git.checked(["submodule", "update", "--init", "--recursive", "--depth", "1"], what="git submodule update",
                    cwd=work, log_path=log_path)


def apply_patches(work: Path, patches: list[tuple[str, bytes]], code: Code, log_path: Path | None,
                  *, stage: bool) -> None:
    """Apply the entry's patches in order; ``stage`` also records them in the index (see ``_trusted``)."""
    for name, text in patches:
        patch_file = work.parent / f".{Path(name).name}"
        patch_file.write_bytes(text)
        try:
            done = git.run(["apply", *(["--index"] if stage else []), str(patch_file)], cwd=work, log_path=log_path)
        finally:
            patch_file.unlink()
        if not done.ok:
            pin = (code.commit or code.sha256 or "")[:12]
            raise FetchError(f"patch {name} no longer applies to {code.url}@{pin}: {process.last_error_line(done.output)}")


def replace_dir(temporary: Path, final: Path) -> None:
    """Rename ``temporary`` to ``final``, moving a damaged ``final`` out of the way first."""
    if final.exists():
        trash = final.with_name(f".trash-{final.name}-{os.getpid()}")
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.rename(temporary, final)


def remove_leftovers(folder: Path, key: str) -> None:
    """Temporary folders of ``key`` left by killed runs; safe because we hold ``key``'s lock.

    Only ``.tmp-KEY-RANDOM``: ``.tmp-KEY-DIGEST-RANDOM`` belongs to another key (the same
    commit with patches), whose lock we do not hold and which may be being built right now.
    """
    prefix = f".tmp-{key}-"
    for leftover in folder.glob(f"{prefix}*"):
        if "-" not in leftover.name[len(prefix):]:  # mkdtemp's random part has no '-'
            shutil.rmtree(leftover, ignore_errors=True)


# ---------------------------------------------------------------- working copies for the user


def working_copy(dest: Path, impl: Implementation, registry_root: Path, cache: Cache, options: FetchOptions,
                 log_path: Path | None = None) -> Path:
    """A real git checkout of the user's own at ``dest``: objects copied from the cache, origin upstream."""
    if dest.exists() and not dest.is_dir():  # iterdir() below would raise NotADirectoryError
        raise FetchError(f"{dest} exists and is not a folder; choose another --dest")
    if dest.exists() and any(dest.iterdir()):
        raise FetchError(f"{dest} exists and is not empty; choose another --dest")
    code = impl.code
    if code.kind == "archive":
        from awrepro import archives

        checkout = archives.ensure(cache, impl, registry_root, options, log_path)
        shutil.copytree(archives.content_root(checkout.tree), dest, symlinks=True, dirs_exist_ok=True)
        return dest / impl.code.subdir if impl.code.subdir else dest
    mirror = ensure_commit(cache, code, options, log_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-{dest.name}-"))
    try:
        work = temporary / "copy"
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
        git.checked(["remote", "set-url" if partial else "add", "origin", code.url], what="git remote", cwd=work)
        apply_patches(work, read_patches(impl, registry_root), code, log_path, stage=False)
        if dest.exists():
            dest.rmdir()
        os.rename(work, dest)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return dest
