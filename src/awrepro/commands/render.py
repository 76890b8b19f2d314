"""``awrepro render LIST.md``: the list, with each paper's status after its line.

The status sits between markers (``<!-- awrepro:status -->`` ... ``<!-- /awrepro:status -->``)
at the end of the line that holds the paper's links, before any trailing spaces (a Markdown
line break stays one). Rendering removes the old markers' content and writes the new one, so
rendering twice changes nothing and nothing outside the markers ever changes.
"""

from __future__ import annotations

import re
from pathlib import Path

from awrepro import awesome, badges, console, history
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.errors import UsageError
from awrepro.registry import Entry, LoadedRegistry, display_path
from awrepro.report_files import write_atomic

OPEN, CLOSE = "<!-- awrepro:status -->", "<!-- /awrepro:status -->"
_MARKED = re.compile(re.escape(OPEN) + ".*?" + re.escape(CLOSE))


def run(registry: LoadedRegistry, list_path: Path, db: Path, *, link: str, check: bool) -> int:
    shown = display_path(list_path)
    try:
        text = list_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {shown}: {exc}") from None
    rendered, missing = render(text, registry, history.all_records(db), link)
    if missing:
        console.warning(f"{shown}: {len(missing)} paper(s) not in {display_path(registry.path)} (no status): "
                        + "; ".join(missing) + " (`awrepro import` adds them)")
    if rendered == text:
        console.success(f"{shown}: up to date")
        return EXIT_OK
    if check:
        console.error(f"{shown} is out of date: run `awrepro render {shown}`")
        return EXIT_FAILED
    write_atomic(list_path, rendered)
    console.success(f"wrote {shown}")
    return EXIT_OK


def render(text: str, registry: LoadedRegistry, records: dict[str, list[history.Record]], link: str) -> tuple[str, list[str]]:
    """The list with fresh statuses, and the titles of its papers the registry lacks."""
    lines = text.split("\n")
    clean = [_MARKED.sub("", line) for line in lines]
    listed, _ = awesome.parse("\n".join(clean))
    known = {paper_id: paper._asdict() for paper_id, paper in registry.papers.items()}
    primary = {entry.paper_id: entry for entry in registry.entries() if entry.primary}
    missing = []
    for paper in listed:
        paper_id = awesome.find(paper, known)
        if paper_id is None:
            missing.append(paper.title)
            continue
        index = paper.head_line - 1
        clean[index] = _with_status(clean[index], _span(primary[paper_id], records, link))
    return "\n".join(clean), missing


def _span(entry: Entry, records: dict[str, list[history.Record]], link: str) -> str:
    shown = str(badges.badge(entry, records.get(entry.full_id, [])))
    return f"{OPEN} <sub>[{shown}]({link})</sub>{CLOSE}"


def _with_status(line: str, span: str) -> str:
    body = line.rstrip()
    return body + span + line[len(body):] if body else line
