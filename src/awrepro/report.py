"""Tables for the terminal. The only module that builds a ``rich.table.Table``."""

from __future__ import annotations

from collections.abc import Sequence

from awrepro import console, describe
from awrepro.history import Record
from awrepro.registry import Entry

STATUS_STYLES = {
    "passed": "green",
    "failed": "bold red",
    "timeout": "bold red",
    "fetch-error": "red",
    "setup-error": "red",
    "error": "bold magenta",
    "skipped": "yellow",
}


def _table(*columns: str):  # -> rich.table.Table
    from rich import box
    from rich.table import Table

    fancy = console.is_terminal()
    table = Table(box=box.SIMPLE_HEAD if fancy else None, show_edge=False, pad_edge=False, header_style="bold" if fancy else "")
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def status_text(record: Record | None) -> str:
    if record is None:
        return ""
    if record.status == "passed" and record.level == "static":
        return "passed (static)"
    return record.status


def print_registry_table(entries: Sequence[Entry], records: dict[str, Record]) -> None:
    from rich.text import Text

    table = _table("ID", "Paper", "Venue", "Code", "Status")
    for entry in entries:
        record = records.get(entry.full_id)
        paper = entry.paper
        title = describe.short_title(paper.title) if entry.primary else ""
        venue = f"{paper.venue} {paper.year}" if entry.primary else ""
        status = Text(status_text(record), style=STATUS_STYLES.get(record.status, "") if record else "")
        table.add_row(entry.id, title, venue, describe.code_summary(entry), status)
    out = console.out()
    out.print(table)
    papers = len({e.paper_id for e in entries})
    impls = sum(1 for e in entries if e.impl is not None)
    out.print(f"{plural(papers, 'paper')}, {plural(impls, 'implementation')}", style="dim")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
