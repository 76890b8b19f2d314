"""``awrepro cache``: where the cache is and how much each kind of thing takes."""

from __future__ import annotations

from awrepro import console
from awrepro.cache import Cache, disk_usage, human_size
from awrepro.constants import EXIT_OK


def sizes(cache: Cache) -> dict[str, int]:
    """Bytes on disk by kind of cache entry."""
    kinds = (("repos", cache.repos), ("checkouts", cache.checkouts), ("archives", cache.archives),
             ("envs", cache.envs), ("logs", cache.logs), ("results.db", cache.results_db))
    return {name: disk_usage(path) if path.exists() else 0 for name, path in kinds}


def run(cache: Cache, *, as_json: bool = False) -> int:
    by_kind = sizes(cache)
    total = sum(by_kind.values())
    if as_json:
        import json

        console.print_plain(json.dumps({"root": str(cache.root), "sizes": by_kind, "total": total}, indent=2))
        return EXIT_OK
    console.print_plain(f"cache: {cache.root}")
    for name, size in by_kind.items():
        console.print_plain(f"  {name:<11}{human_size(size):>10}")
    console.print_plain(f"  {'total':<11}{human_size(total):>10}")
    return EXIT_OK
