"""``awrepro status`` and ``awrepro history ID``: what the results history says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from awrepro import console, describe, history, report
from awrepro.constants import EXIT_OK
from awrepro.registry import LoadedRegistry
from awrepro.results import kind


def run(registry: LoadedRegistry, db: Path, *, as_json: bool = False) -> int:
    records = history.all_records(db)
    rows = []
    data: list[dict[str, Any]] = []
    for entry in registry.entries():
        runs = records.get(entry.full_id, [])
        if not runs:
            rows.append((entry.id, "", "never checked", "", ""))
            data.append({"id": entry.id, "full_id": entry.full_id, "status": None, "level": None, "since": None,
                         "runs": 0, "change": None, "last_run": None})
            continue
        streak = history.streak(runs)
        latest = runs[0]
        before = runs[1] if len(runs) > 1 else None
        change = _change(latest.status, before)
        rows.append((entry.id, latest.status, _since(latest.status, streak), str(len(streak)), change))
        data.append({"id": entry.id, "full_id": entry.full_id, "status": latest.status, "level": latest.level,
                     "since": streak[-1].finished_at, "runs": len(streak), "change": change or None,
                     "last_run": describe.status_data(latest)})
    if as_json:
        console.print_plain(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        report.print_status_table(rows)
    return EXIT_OK


def _since(status: str, streak: list[history.Record]) -> str:
    word = {"passed": "passing", "skipped": "skipped"}.get(status, "failing" if kind(status).failing else status)
    runs = len(streak)
    return f"{word} since {streak[-1].finished_at[:10]}, {runs} run{'s' * (runs != 1)}"


def _change(status: str, before: history.Record | None) -> str:
    """Against the entry's previous run only: `fixed` is "failed last time, passes now"."""
    if before is None:
        return ""
    if kind(status).failing and kind(status).about_code and before.status == "passed":
        return "regression"
    if status == "passed" and kind(before.status).failing and kind(before.status).about_code:
        return "fixed"
    return ""


def run_history(registry: LoadedRegistry, db: Path, entry_id: str, limit: int, *, as_json: bool = False) -> int:
    entry = registry.select([entry_id])[0]
    records = history.entry_history(db, entry.full_id, limit)
    if as_json:
        runs = [{**describe.status_data(r), "duration": round(r.duration, 3), "commit": r.commit_sha,  # type: ignore[dict-item]
                 "env_key": r.env_key, "log_path": r.log_path} for r in records]
        console.print_plain(json.dumps({"id": entry.id, "full_id": entry.full_id, "runs": runs}, indent=2,
                                       ensure_ascii=False))
    else:
        report.print_history_table(entry.id, records)
    return EXIT_OK
