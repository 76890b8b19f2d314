"""``awrepro status`` and ``awrepro history ID``: what the results history says."""

from __future__ import annotations

from pathlib import Path

from awrepro import history, report
from awrepro.constants import EXIT_OK
from awrepro.registry import LoadedRegistry
from awrepro.results import FAILING


def run(registry: LoadedRegistry, db: Path) -> int:
    records = history.all_records(db)
    rows = []
    for entry in registry.entries():
        runs = records.get(entry.full_id, [])
        if not runs:
            rows.append((entry.id, "", "never checked", "", ""))
            continue
        streak = history.streak(runs)
        latest = runs[0]
        before = runs[1] if len(runs) > 1 else None
        rows.append((entry.id, latest.status, _since(latest.status, streak), str(len(streak)), _change(latest.status, before)))
    report.print_status_table(rows)
    return EXIT_OK


def _since(status: str, streak: list[history.Record]) -> str:
    word = {"passed": "passing", "skipped": "skipped"}.get(status, "failing" if status in FAILING else status)
    runs = len(streak)
    return f"{word} since {streak[-1].finished_at[:10]}, {runs} run{'s' * (runs != 1)}"


def _change(status: str, before: history.Record | None) -> str:
    """Against the entry's previous run only: `fixed` is "failed last time, passes now"."""
    if before is None:
        return ""
    if status in FAILING and before.status == "passed":
        return "regression"
    if status == "passed" and before.status in FAILING:
        return "fixed"
    return ""


def run_history(registry: LoadedRegistry, db: Path, entry_id: str, limit: int) -> int:
    entry = registry.select([entry_id])[0]
    records = history.entry_history(db, entry.full_id, limit)
    report.print_history_table(entry.id, records)
    return EXIT_OK
