"""Tables for the terminal. The only module that builds a ``rich.table.Table``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from awrepro import console, describe
from awrepro.history import Record
from awrepro.registry import Entry
from awrepro.results import kind, partial, summary
from awrepro.sanitize import printable

if TYPE_CHECKING:
    from awrepro.results import Result

Cell = Union[str, tuple[str, str]]  # text, or (text, style) for a terminal
# Never cut in a terminal: what a user reads a row by.
_WHOLE = ("ID", "Status")
_GAP_PLAIN = 2  # spaces between columns of a plain table
_GAP_BOXED = 3  # a terminal table's column: one cell of padding each side and the divider between


def style_of(status: str) -> str:
    return kind(status).style


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]], *, shrink: Sequence[str] = (),
                styles: dict[str, str] | None = None) -> None:
    """A table of sanitised cells; columns that are empty in every row are left out.

    Plain output (not a terminal) is the cells joined by two spaces, never cut and never padded at
    the end of a line. In a terminal nothing wraps: when space runs out the ``shrink`` columns are
    cut first (with an ellipsis), then the others, but never an id or a status. With ``styles``,
    the second column's text picks its cell's style.
    """
    if styles:
        rows = [[row[0], (row[1], styles.get(row[1], "")) if isinstance(row[1], str) else row[1], *row[2:]]
                for row in rows]
    from rich.cells import cell_len  # display width: wide characters take two cells

    cells = [[(printable(c), "") if isinstance(c, str) else (printable(c[0]), c[1]) for c in row] for row in rows]
    keep = [i for i, name in enumerate(columns) if i == 0 or any(row[i][0] for row in cells)]
    names = [columns[i] for i in keep]
    cells = [[row[i] for i in keep] for row in cells]
    naturals = [max([cell_len(name), *(cell_len(row[index][0]) for row in cells)]) for index, name in enumerate(names)]
    if not console.is_terminal():
        lines = [names, *([text for text, _ in row] for row in cells)]
        for line in lines:
            padded = (text + " " * (width - cell_len(text)) for text, width in zip(line, naturals))
            console.print_plain((" " * _GAP_PLAIN).join(padded).rstrip())
        return
    _print_boxed(names, cells, naturals, shrink)


def _print_boxed(names: list[str], cells: list[list[tuple[str, str]]], naturals: list[int], shrink: Sequence[str]) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = console.out()
    space = out.width - _GAP_BOXED * (len(names) - 1)
    order = [0 if name in shrink else 1 if name not in _WHOLE else None for name in names]
    widths = _fit(naturals, order, space)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name, width in zip(names, widths):
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=width)
    for row in cells:
        table.add_row(*(Text(text, style=style) for text, style in row))
    out.print(table)


def _fit(naturals: list[int], order: list[int | None], space: int) -> list[int]:
    """Natural widths, cut one cell at a time from the widest column that may shrink until they fit:
    columns of order 0 first, to 12 cells and then further; then those of order 1; never order None."""
    widths = list(naturals)
    for rank in (0, 1):
        for floor in (12, 1):
            while sum(widths) > space:
                candidates = [i for i, r in enumerate(order) if r == rank and widths[i] > min(naturals[i], floor)]
                if not candidates:
                    break
                widths[max(candidates, key=lambda i: widths[i])] -= 1
    return widths


def status_text(record: Record | None) -> str:
    if record is None:
        return ""
    if record.status == "passed" and partial(record.level):
        return f"passed ({record.level})"
    return record.status


def print_registry_table(entries: Sequence[Entry], records: dict[str, Record]) -> None:
    rows: list[list[Cell]] = []
    for entry in entries:
        record = records.get(entry.full_id)
        paper = entry.paper
        title = describe.short_title(paper.title) if entry.primary else ""
        venue = f"{paper.venue} {paper.year}" if entry.primary else ""
        rows.append([entry.id, title, venue, describe.code_summary(entry),
                     (status_text(record), style_of(record.status) if record else "")])
    print_table(("ID", "Paper", "Venue", "Code", "Status"), rows, shrink=("Paper", "Venue"))
    papers = len({e.paper_id for e in entries})
    impls = sum(1 for e in entries if e.impl is not None)
    console.say(f"{plural(papers, 'paper')}, {plural(impls, 'implementation')}", style="dim")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def result_line(result: Result) -> str:
    """One plain line per finished entry (CI logs, and above the live rows in a terminal)."""
    level = f" ({result.level})" if result.status == "passed" and result.level else ""
    note = f"  {result.note}" if result.note else ""
    return printable(f"{result.entry_id}  {result.status}{level}  {result.duration:.1f}s{note}")


def print_check_table(results: Sequence[Result], regressions: set[str], *, only_failing: bool = False) -> None:
    """The table, the counts, and the full log path of every failing entry on a line of its own.
    ``only_failing`` (``-q``): the table lists only failing entries (none: no table); the counts stay whole."""
    rows: list[list[Cell]] = [
        [r.entry_id, (r.status + (" (regression)" if r.full_id in regressions else ""), style_of(r.status)),
         r.level or "", r.failed_stage or "", f"{r.duration:.1f}s", r.note]
        for r in results if r.failing or not only_failing]
    if rows or not only_failing:
        print_table(("ID", "Status", "Level", "Stage", "Duration", "Note"), rows, shrink=("Note",))
    counts = summary(list(results))
    console.say(", ".join(f"{n} {status}" for status, n in counts.items() if n) or "nothing to check", style="bold")
    logs = [r for r in results if r.failing and r.log_path]
    if logs:
        console.say("Logs:", style="bold")
        width = max(len(r.entry_id) for r in logs)
        for r in logs:
            console.print_plain(printable(f"  {r.entry_id.ljust(width)}  {r.log_path}"))


def print_status_table(rows: Sequence[tuple[str, str, str, str, str]]) -> None:
    print_table(("ID", "Status", "Since", "Runs", "Change"),
                [[entry_id, (status, style_of(status) if status else ""), since, runs,
                  (change, "bold red" if change == "regression" else "green")]
                 for entry_id, status, since, runs, change in rows])


def print_history_table(entry_id: str, records: Sequence[Record]) -> None:
    if not records:
        console.say(printable(f"{entry_id}: no recorded runs yet (`awrepro check {entry_id}`)"))
        return
    rows: list[list[Cell]] = [
        [str(r.run_id), r.finished_at, (r.status, style_of(r.status)), r.level or "", r.stage or "",
         f"{r.duration:.1f}s", (r.commit_sha or "")[:12], r.note] for r in records]
    print_table(("Run", "Finished", "Status", "Level", "Stage", "Duration", "Commit", "Note"), rows, shrink=("Note",))
