"""``awrepro list``: the registry, one row per implementation, with the last known status."""

from __future__ import annotations

from pathlib import Path

from awrepro import console, describe, history, report
from awrepro.cache import Cache
from awrepro.registry import LoadedRegistry
from awrepro.selection import check_known, matches


def run(
    registry: LoadedRegistry,
    cache_dir: Path | None,
    *,
    section: str | None,
    tags: list[str],
    has_code: bool | None,
    as_json: bool,
) -> int:
    check_known(registry, section, tags)
    entries = [e for e in registry.entries()
               if matches(e, section, tags) and (has_code is None or has_code == (e.impl is not None))]
    records = history.latest(Cache.open(cache_dir).results_db)
    if as_json:
        import json

        papers = dict.fromkeys(e.paper_id for e in entries)
        data = [
            describe.paper_data(pid, registry.papers[pid], [e for e in entries if e.paper_id == pid], records)
            for pid in papers
        ]
        console.print_plain(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    report.print_registry_table(entries, records)
    return 0
