"""``awrepro gc``: remove what no registry that uses the cache needs, listing it with sizes.

Every registry that used the cache is recorded (``<cache>/registries/``); gc keeps what any of them
whose file still exists needs, unless ``--only-this-registry`` narrows it to the current one.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from awrepro import archives, console, sources
from awrepro.cache import Cache, human_size, inodes
from awrepro.constants import EXIT_OK
from awrepro.errors import AwreproError, FetchError, UsageError
from awrepro.registry import LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, *, dry_run: bool, only_this_registry: bool = False,
        log_days: int = 30) -> int:
    # A dry run removes nothing, so it takes no lock: it lists a read-only cache too.
    with nullcontext(True) if dry_run else cache.exclusively() as alone:
        if not alone:
            raise UsageError("another awrepro command is using the cache; run gc when it has finished")
        registries = [registry] if only_this_registry else _registries(registry, cache, forget=not dry_run)
        used: set[Path] = set()
        for each in registries:
            used |= _used(each, cache)
        unused = [path for path in _candidates(cache) if path not in used]
        return _collect(unused + _git_temporaries(cache) + _old_logs(cache, log_days), dry_run=dry_run)


def _registries(current: LoadedRegistry, cache: Cache, *, forget: bool) -> list[LoadedRegistry]:
    """The current registry and every other one that used this cache and still exists. One that
    cannot be read stops gc: what it needs is unknown, so nothing could be removed safely."""
    from awrepro import registry as registry_module

    found = [current]
    for path, record in cache.known_registries().items():
        if path == current.path.absolute():
            continue
        if not path.is_file():
            console.info(f"forgetting {path}: the registry file is gone{'' if forget else ' (not in a dry run)'}")
            if forget:
                record.unlink(missing_ok=True)
            continue
        try:
            found.append(registry_module.load(path, cache_root=cache.root, keep_memo=cache.writable()))
        except AwreproError as exc:
            raise UsageError(f"{path} used this cache and cannot be read ({exc.message}), so gc cannot tell "
                             "what it needs", hint="Fix that registry, or run gc --only-this-registry to keep "
                             "only what this one needs.") from None
    return found


def _collect(unused: list[Path], *, dry_run: bool) -> int:
    """Remove (or list) ``unused`` with their sizes. A file hard-linked into several items counts once,
    and what is freed counts only files whose every link goes: uv links packages across environments."""
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    links_removed: dict[tuple[int, int], int] = {}
    sizes = []
    for path in unused:
        size = 0
        for key, (blocks, links) in inodes(path).items():
            links_removed[key] = links_removed.get(key, 0) + 1
            if key not in seen:
                seen[key] = (blocks, links)
                size += blocks
        sizes.append(size)
    total = sum(blocks for key, (blocks, links) in seen.items() if links_removed[key] >= links)
    for path, size in zip(unused, sizes):
        console.print_plain(f"{'would remove' if dry_run else 'removed'}  {human_size(size):>9}  {path}")
        if not dry_run:
            _remove(path)
    verb = "would free" if dry_run else "freed"
    console.info(f"{len(unused)} unused item{'s' * (len(unused) != 1)}, {verb} {human_size(total)}")
    return EXIT_OK


def _candidates(cache: Cache) -> list[Path]:
    found: list[Path] = []
    if cache.repos.is_dir():
        found += sorted(p for p in cache.repos.rglob("*.git") if p.is_dir())
        found += sorted(p for p in cache.repos.rglob(".tmp-*") if p.is_dir())
    for folder in (cache.checkouts, cache.archives, cache.envs):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_dir())
    return found


def _git_temporaries(cache: Cache) -> list[Path]:
    """Leftovers of killed fetches inside the repositories gc keeps (gc holds the cache alone: no fetch runs)."""
    repositories = sorted(cache.repos.rglob("*.git")) if cache.repos.is_dir() else []
    if cache.checkouts.is_dir():
        repositories += sorted(p for p in cache.checkouts.glob("*/*/.git") if p.is_dir())
    from awrepro import git

    return [leftover for repo in repositories if repo.is_dir() for leftover in git.temporaries(repo)]


def _old_logs(cache: Cache, days: int) -> list[Path]:
    """Run log folders last written more than ``days`` days ago."""
    if not cache.logs.is_dir():
        return []
    cutoff = time.time() - days * 86400
    return sorted(p for p in cache.logs.iterdir() if p.is_dir() and p.stat().st_mtime < cutoff)


def _used(registry: LoadedRegistry, cache: Cache) -> set[Path]:
    from awrepro import envs

    used: set[Path] = set()
    for entry in registry.entries():
        impl = entry.impl
        if impl is None:
            continue
        try:
            patches = [text for _, text in sources.read_patches(impl, registry.root)]
        except FetchError:
            patches = None
        if impl.code.kind == "archive":
            if impl.code.sha256 and patches is not None:
                used.add(archives.folder(cache, impl.code.sha256, patches))
            continue
        used.add(sources.mirror_path(cache, impl.code.url))
        if patches is not None:
            used.add(cache.checkouts / sources.checkout_key(impl, patches))
    used |= envs.used_environments(registry, cache)
    return used


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    lock = path.with_name(path.name + ".lock")
    lock.unlink(missing_ok=True)
