"""Where an implementation's code is in the cache: names, keys and paths, read without git.

A bare mirror per repository, a checkout per pinned commit. ``fetching.py`` decides whether
what is there can be trusted; ``checkouts.py`` and ``archives.py`` build what is not (they
import this module, never the other way round).
(No ``from __future__ import annotations``: NamedTuple would compile each string annotation.)
"""

import json
import re
from pathlib import Path
from typing import Callable, NamedTuple

from awrepro.cache import Cache
from awrepro.constants import SCP_LIKE_URL
from awrepro.errors import FetchError
from awrepro.model import Code, GitCode, Implementation

_SCP_LIKE = re.compile(SCP_LIKE_URL)


class FetchOptions(NamedTuple):
    """How to reach code: upstream (the default), or only an offline mirror folder."""

    mirror_dir: Path | None = None
    allow_file: bool = False
    verify: bool = False


class Checkout(NamedTuple):
    """Where an implementation's code is, and whether this call had to fetch it."""

    tree: Path  # the repository's work tree (or unpacked archive)
    root: Path  # tree joined with the entry's subdir: where commands run
    key: str  # see checkout_key: environments built into the checkout are keyed by it
    fetched: bool


def url_path(url: str) -> str:
    """A readable, filesystem-safe path for a repository URL: ``github.com/allenai/longformer``."""
    text = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url.strip())
    text = re.sub(r"^[^@/]+@", "", text)  # user@ of ssh URLs
    text = text.replace(":", "/", 1) if _SCP_LIKE.match(url) else text
    text = re.sub(r"\.git/?$", "", text.rstrip("/"))
    parts = [re.sub(r"[^A-Za-z0-9._-]", "_", part) for part in text.split("/") if part]
    return "/".join("_" if part in (".", "..") else part for part in parts) or "repo"


def mirror_path(cache: Cache, url: str) -> Path:
    return cache.repos / f"{url_path(url)}.git"


def checkout_key(impl: Implementation, patch_texts: list[bytes]) -> str:
    """One checkout per (repository, commit); sparse paths and patches make their own."""
    code = impl.code
    base = f"{url_path(code.url).replace('/', '+')}@{(code.pin or 'unpinned')[:12]}"
    paths = sparse_paths(code)
    if not paths and not patch_texts:
        return base
    import hashlib  # not on the common path: a warm fetch of a plain entry starts without it

    digest = hashlib.sha256(json.dumps(paths).encode() + b"".join(hashlib.sha256(p).digest() for p in patch_texts))
    return f"{base}-{digest.hexdigest()[:8]}"


def sparse_paths(code: Code) -> list[str]:
    """Folders to check out (``!folder`` leaves one out); empty for the whole tree.

    A subdir alone means the whole tree: imports often reach outside it.
    """
    if not isinstance(code, GitCode) or not code.sparse:
        return []
    return sorted({*(p.strip("/") for p in code.sparse), *([code.subdir.strip("/")] if code.subdir else [])})


def sparse_wanted(code: Code) -> Callable[[str], bool]:
    """Whether a file path is in the entry's sparse checkout: the folders named, and the files
    directly in each of their parent folders (top level included, as git's cone mode has it),
    minus the folders left out."""
    paths = sparse_paths(code)
    if not paths:
        return lambda path: True
    included = tuple(p + "/" for p in paths if not p.startswith("!"))
    excluded = tuple(p[1:] + "/" for p in paths if p.startswith("!"))
    parents = {""} | {"/".join(p.split("/")[:depth]) for p in included for depth in range(1, p.count("/"))}

    def wanted(path: str) -> bool:
        folder = path.rpartition("/")[0]
        return (path.startswith(included) or folder in parents) and not path.startswith(excluded)

    return wanted


def read_patches(impl: Implementation, registry_root: Path) -> list[tuple[str, bytes]]:
    found = []
    for rel in impl.env.patches:
        try:
            found.append((rel, (registry_root / rel).read_bytes()))
        except OSError as exc:
            raise FetchError(f"patch {rel} cannot be read: {exc.strerror}") from None
    return found


def head_of(worktree: Path) -> str | None:
    """The commit a detached checkout points at, read from ``.git/HEAD`` without running git."""
    try:
        head = (worktree / ".git" / "HEAD").read_text().strip()
    except OSError:
        return None
    return head if re.fullmatch(r"[0-9a-f]{40}", head) else None


def upstream_of(url: str, options: FetchOptions) -> tuple[str, bool]:
    """Where to fetch ``url`` from: itself, or its copy in the offline mirror folder (never the network)."""
    if options.mirror_dir is None:
        return url, options.allow_file
    local = options.mirror_dir.absolute() / f"{url_path(url)}.git"  # git runs in the cache's mirror, not here
    if not (local / "HEAD").is_file():
        raise FetchError(f"{url} is not in the mirror {options.mirror_dir} (expected {local}); "
                         f"run `awrepro mirror {options.mirror_dir}` where the network is reachable")
    return str(local), True


