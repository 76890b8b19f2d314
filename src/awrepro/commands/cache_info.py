"""``awrepro cache``: where the cache is and how much each kind of thing takes."""

from __future__ import annotations

from awrepro import console
from awrepro.cache import Cache, disk_usage, human_size
from awrepro.constants import EXIT_OK


def run(cache: Cache) -> int:
    console.print_plain(f"cache: {cache.root}")
    total = 0
    for name, path in (("repos", cache.repos), ("checkouts", cache.checkouts), ("archives", cache.archives),
                       ("envs", cache.envs), ("logs", cache.logs), ("results.db", cache.results_db)):
        size = disk_usage(path) if path.exists() else 0
        total += size
        console.print_plain(f"  {name:<11}{human_size(size):>10}")
    console.print_plain(f"  {'total':<11}{human_size(total):>10}")
    return EXIT_OK
