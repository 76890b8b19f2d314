"""Tables for the terminal. The only module that builds a ``rich.table.Table``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from awrepro import console, describe
from awrepro.history import Record
from awrepro.registry import Entry

if TYPE_CHECKING:
    from rich.table import Table

    from awrepro.results import Result

STATUS_STYLES = {
    "passed": "green",
    "failed": "bold red",
    "timeout": "bold red",
    "fetch-error": "red",
    "setup-error": "red",
    "error": "bold magenta",
    "skipped": "yellow",
}


def _table(*columns: str, rows: Sequence[Sequence[str]] = (), shrink: Sequence[str] = ()) -> Table:
    """A table whose cells never wrap: when space runs out only the ``shrink`` columns are cut, with an ellipsis."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    fancy = console.is_terminal()
    table = Table(box=box.SIMPLE_HEAD if fancy else None, show_edge=False, pad_edge=False, header_style="bold" if fancy else "")
    naturals = [max([cell_len(name), *(cell_len(str(row[index])) for row in rows)]) for index, name in enumerate(columns)]
    # rich squeezes no_wrap columns evenly (down to nothing) when a table is too wide: give each column its width here.
    space = console.out().width - 2 * (len(columns) - 1)
    widths = _fit(naturals, [name in shrink for name in columns], space)
    for name, width in zip(columns, widths):
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=width)
    return table


def _fit(naturals: list[int], shrinkable: list[bool], space: int) -> list[int]:
    """Natural widths, with the widest shrinkable column cut one cell at a time until they fit:
    to 12 cells first, and only if that is not enough further (the other columns stay whole)."""
    widths = list(naturals)
    for floor in (12, 1):
        while sum(widths) > space:
            candidates = [i for i, cut in enumerate(shrinkable) if cut and widths[i] > min(naturals[i], floor)]
            if not candidates:
                break
            widths[max(candidates, key=lambda i: widths[i])] -= 1
    return widths


def status_text(record: Record | None) -> str:
    if record is None:
        return ""
    if record.status == "passed" and record.level == "static":
        return "passed (static)"
    return record.status


def print_registry_table(entries: Sequence[Entry], records: dict[str, Record]) -> None:
    from rich.text import Text

    rows = []
    for entry in entries:
        record = records.get(entry.full_id)
        paper = entry.paper
        title = describe.short_title(paper.title) if entry.primary else ""
        venue = f"{paper.venue} {paper.year}" if entry.primary else ""
        rows.append((entry.id, title, venue, describe.code_summary(entry), status_text(record),
                     STATUS_STYLES.get(record.status, "") if record else ""))
    table = _table("ID", "Paper", "Venue", "Code", "Status", rows=rows, shrink=("Paper", "Venue"))
    for *cells, style in rows:
        table.add_row(*cells[:-1], Text(cells[-1], style=style))
    out = console.out()
    out.print(table)
    papers = len({e.paper_id for e in entries})
    impls = sum(1 for e in entries if e.impl is not None)
    out.print(f"{plural(papers, 'paper')}, {plural(impls, 'implementation')}", style="dim")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def result_line(result: Result) -> str:
    """One plain line per finished entry (CI logs, and above the live rows in a terminal)."""
    level = f" ({result.level})" if result.status == "passed" and result.level else ""
    note = f"  {result.note}" if result.note else ""
    return f"{result.entry_id}  {result.status}{level}  {result.duration:.1f}s{note}"


def print_check_table(results: Sequence[Result], regressions: set[str]) -> None:
    from rich.text import Text

    rows = [(r.entry_id, r.status + (" (regression)" if r.full_id in regressions else ""), r.level or "",
             r.failed_stage or "", f"{r.duration:.1f}s", r.note, (r.log_path or "") if r.failing else "")
            for r in results]
    # Without the rows, a wide note or log path squeezed the other columns out of the table.
    table = _table("ID", "Status", "Level", "Stage", "Duration", "Note", "Log", rows=rows, shrink=("Note", "Log"))
    for r, (entry_id, status, *rest) in zip(results, rows):
        table.add_row(entry_id, Text(status, style=STATUS_STYLES.get(r.status, "")), *rest)
    from awrepro.results import summary

    out = console.out()
    out.print(table)
    counts = summary(list(results))
    out.print(", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing to check", style="bold")


def print_status_table(rows: Sequence[tuple[str, str, str, str, str]]) -> None:
    from rich.text import Text

    table = _table("ID", "Status", "Since", "Runs", "Change", rows=rows)
    for entry_id, status, since, runs, change in rows:
        table.add_row(entry_id, Text(status, style=STATUS_STYLES.get(status, "")), since, runs,
                      Text(change, style="bold red" if change == "regression" else "green"))
    console.out().print(table)


def print_history_table(entry_id: str, records: Sequence[Record]) -> None:
    out = console.out()
    if not records:
        out.print(f"{entry_id}: no recorded runs yet (`awrepro check {entry_id}`)")
        return
    rows = [(str(r.run_id), r.finished_at, r.status, r.level or "", r.stage or "", f"{r.duration:.1f}s",
             (r.commit_sha or "")[:12], r.note) for r in records]
    table = _table("Run", "Finished", "Status", "Level", "Stage", "Duration", "Commit", "Note", rows=rows,
                   shrink=("Note",))
    for row in rows:
        table.add_row(*row)
    out.print(table)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, shrink: Sequence[str] = (),
                styles: dict[str, str] | None = None) -> None:
    """A plain table; with ``styles``, the second column's value picks its cell's style."""
    from rich.text import Text

    table = _table(*columns, rows=rows, shrink=shrink)
    for first, second, *rest in rows:
        table.add_row(first, Text(second, style=(styles or {}).get(second, "")), *rest)
    console.out().print(table)
