"""``awrepro gc``: remove what no entry of the current registry uses, listing it with sizes."""

from __future__ import annotations

import shutil
from pathlib import Path

from awrepro import archives, console, sources
from awrepro.cache import Cache, disk_usage, human_size
from awrepro.constants import EXIT_OK
from awrepro.errors import FetchError, UsageError
from awrepro.registry import LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, *, dry_run: bool) -> int:
    with cache.exclusively() as alone:
        if not alone and not dry_run:
            raise UsageError("another awrepro command is using the cache; run gc when it has finished")
        return _collect(registry, cache, dry_run=dry_run)


def _collect(registry: LoadedRegistry, cache: Cache, *, dry_run: bool) -> int:
    used = _used(registry, cache)
    unused = [path for path in _candidates(cache) if path not in used]
    total = 0
    for path in unused:
        size = disk_usage(path)
        total += size
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
    shutil.rmtree(path, ignore_errors=True)
    lock = path.with_name(path.name + ".lock")
    lock.unlink(missing_ok=True)
