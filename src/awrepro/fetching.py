"""Bringing an implementation's code into the cache, at its pin.

What is there and trusted is used as it is: a checkout counts when its marker is there and
its HEAD is the pin, a file read without git, so a warm ``fetch`` costs little more than
start-up. Anything else is built by ``checkouts.py`` (git) or ``archives.py``. This is the
one module above both builders; they share ``sources.py`` (names and paths) and
``staging.py`` (building aside) and never import each other's callers.
"""

from __future__ import annotations

from pathlib import Path

from awrepro import locks
from awrepro.cache import Cache
from awrepro.errors import FetchError
from awrepro.model import ArchiveCode, GitCode, Implementation
from awrepro.sources import Checkout, FetchOptions, checkout_key, head_of, read_patches
from awrepro.staging import MARKER


def ensure(cache: Cache, impl: Implementation, registry_root: Path, options: FetchOptions,
           log_path: Path | None = None) -> Checkout:
    """Make sure the implementation's code is in the cache, at its pin; return where it is."""
    code = impl.code
    if isinstance(code, ArchiveCode):
        from awrepro import archives

        return archives.ensure(cache, impl, registry_root, options, log_path)
    patches = read_patches(impl, registry_root)
    key = checkout_key(impl, [text for _, text in patches])
    final = cache.checkouts / key
    tree = final / code.repo_name
    if _trusted(final, tree, code, options.verify):
        return Checkout(tree, _root(tree, code), key, fetched=False)
    # Building needs git and temporary folders; a warm fetch imports none of that.
    from awrepro import checkouts, process

    with process.interruptible(), locks.locked(cache.checkouts / f"{key}.lock"):
        if _trusted(final, tree, code, options.verify):  # another process built it meanwhile
            return Checkout(tree, _root(tree, code), key, fetched=False)
        mirror = checkouts.ensure_commit(cache, code, options, log_path)
        checkouts.build_checkout(cache, key, final, code, mirror, patches, log_path)
    return Checkout(tree, _root(tree, code), key, fetched=True)


def _root(tree: Path, code: GitCode) -> Path:
    if not code.subdir:
        return tree
    from awrepro.paths import inside

    root = inside(tree, tree, code.subdir, "code.subdir")
    if not root.is_dir():
        raise FetchError(f"subdir {code.subdir} does not exist in {code.url} at {code.commit[:12]}")
    return root


def _trusted(final: Path, tree: Path, code: GitCode, verify: bool) -> bool:
    """Marker present and HEAD at the pin; with ``verify`` also no tracked file changed or missing."""
    if not (final / MARKER).is_file() or head_of(tree) != code.commit:
        return False
    if verify:
        from awrepro import git

        return git.run(["diff", "--quiet"], cwd=tree, timeout=300).ok
    return True
