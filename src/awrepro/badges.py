"""An entry's standing in a few words, from its recorded runs: what ``render`` writes into the
list and the dashboard shows (``✅ runs (smoke) · 2026-12-01``, ``❌ setup-error since 2026-11-20``)."""

from __future__ import annotations

from typing import NamedTuple

from awrepro.history import Record, streak
from awrepro.registry import Entry
from awrepro.results import FAILING


class Badge(NamedTuple):
    icon: str
    text: str
    kind: str  # passed, static, failing, skipped, no-code, draft, unchecked: for styles and filters

    def __str__(self) -> str:
        return f"{self.icon} {self.text}"


def badge(entry: Entry, runs: list[Record]) -> Badge:
    """``runs`` newest first."""
    if entry.impl is None and entry.paper.no_code:
        return Badge("⛔", "no code", "no-code")
    if entry.draft:
        return Badge("📝", "draft", "draft")
    if not runs:
        return Badge("❔", "not checked yet", "unchecked")
    latest = runs[0]
    day = latest.finished_at[:10]
    if latest.status == "passed" and latest.level == "static":
        return Badge("🟡", f"static only · {day}", "static")
    if latest.status == "passed":
        return Badge("✅", f"runs ({latest.level or 'smoke'}) · {day}", "passed")
    if latest.status in FAILING:
        return Badge("❌", f"{latest.status} since {streak(runs)[-1].finished_at[:10]}", "failing")
    return Badge("⏭", f"{latest.status} · {day}", "skipped")
