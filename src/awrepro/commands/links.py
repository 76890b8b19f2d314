"""``awrepro links``: every URL of the registry checked for link rot, concurrently.

PDFs, arXiv pages, code URLs, ``listed_as`` pages and archive URLs; git repositories with
``git ls-remote``. Good results are cached for a while (``linkcache.py``); exit 1 when a link is broken.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from awrepro import console, git, links
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.linkcache import LinkCache
from awrepro.model import GitCode
from awrepro.progress import Board
from awrepro.registry import Entry
from awrepro.report import plural, print_table
from awrepro.report_files import write_atomic

STYLES = {"ok": "green", "redirected": "yellow", "broken": "bold red", "timeout": "red", "rate-limited": "yellow"}


@dataclass
class Link:
    url: str
    kind: str  # pdf, arxiv, code, listed_as, archive, git
    where: list[str] = field(default_factory=list)  # entry ids that name it
    outcome: links.Outcome | None = None
    cached: bool = False


@dataclass(frozen=True)
class Settings:
    timeout: float = 15.0
    per_host: int = 4
    budget: float = 300.0
    ttl: float = 24 * 3600
    jobs: int = 16


def collect(entries: list[Entry]) -> list[Link]:
    """Every URL the entries name, once each, with the ids that name it."""
    found: dict[str, Link] = {}

    def add(url: str | None, kind: str, where: str) -> None:
        if url:
            link = found.setdefault(url, Link(url, kind))
            if where not in link.where:
                link.where.append(where)

    for entry in entries:
        paper = entry.paper
        add(paper.pdf, "pdf", entry.paper_id)
        add(f"https://arxiv.org/abs/{paper.arxiv}" if paper.arxiv else None, "arxiv", entry.paper_id)
        add(paper.listed_as, "listed_as", entry.paper_id)
        if entry.impl:
            code = entry.impl.code
            if isinstance(code, GitCode):
                add(code.git, "git", entry.id)
            else:
                add(code.archive, "archive", entry.id)
            add(code.listed_as, "listed_as", entry.id)
    return list(found.values())


def run(entries: list[Entry], cache: Cache, settings: Settings, *, as_json: bool, markdown: Path | None) -> int:
    found = collect(entries)
    link_cache = LinkCache(cache.links_db, settings.ttl, writable=cache.writable())
    try:
        todo = []
        for link in found:
            link.outcome = link_cache.get(link.url)
            link.cached = link.outcome is not None
            if not link.cached:
                todo.append(link)
        _check_all(todo, settings, quiet=as_json)
        for link in todo:
            assert link.outcome is not None
            link_cache.put(link.url, link.outcome)
    finally:
        link_cache.close()
    found.sort(key=lambda link: (links.STATUSES.index(_status(link)), link.url))
    if markdown:
        write_atomic(markdown, _markdown(found))
    if as_json:
        console.print_plain(json.dumps(_report(found), indent=2))
    else:
        _print(found)
    return EXIT_FAILED if any(_status(link) == "broken" for link in found) else EXIT_OK


def _status(link: Link) -> str:
    return link.outcome.status if link.outcome else "timeout"


def _check_all(todo: list[Link], settings: Settings, *, quiet: bool) -> None:
    checker = links.Checker(timeout=settings.timeout, per_host=settings.per_host,
                            budget=links.Budget(settings.budget), environ=os.environ)
    try:
        with Board(0 if quiet else len(todo), "links") as board:
            def one(link: Link) -> None:
                board.stage(link.url, link.kind)
                link.outcome = checker.check(link.url, "git" if link.kind == "git" and _is_git(link.url) else "http")
                if not quiet:
                    board.done(link.url, _line(link), STYLES.get(link.outcome.status, ""))

            with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
                list(pool.map(one, todo))
    finally:
        checker.close()


def _is_git(url: str) -> bool:
    return git.url_scheme(url) in ("https", "ssh", "git")


def _line(link: Link) -> str:
    outcome = link.outcome
    assert outcome is not None
    code = f" {outcome.http_status}" if outcome.http_status else ""
    note = f"  {outcome.note}" if outcome.note else ""
    return f"{link.url}  {outcome.status}{code}{note}"


def _print(found: list[Link]) -> None:
    rows = [(link.url, _status(link), link.kind, ", ".join(link.where), _note(link)) for link in found]
    print_table(("URL", "Status", "Kind", "Where", "Note"), rows, shrink=("URL", "Where", "Note"), styles=STYLES)
    console.out().print(_summary(found), style="bold")


def _note(link: Link) -> str:
    note = link.outcome.note if link.outcome else ""
    return f"{note} (cached)" if link.cached and note else ("cached" if link.cached else note)


def _summary(found: list[Link]) -> str:
    counts = {status: sum(1 for link in found if _status(link) == status) for status in links.STATUSES}
    return plural(len(found), "link") + ": " + ", ".join(f"{n} {status}" for status, n in counts.items() if n)


def _report(found: list[Link]) -> dict[str, object]:
    return {
        "format": "awrepro-links", "version": 1,
        "summary": {status: sum(1 for link in found if _status(link) == status) for status in links.STATUSES},
        "links": [{"url": link.url, "kind": link.kind, "where": link.where, "status": _status(link),
                   "http_status": link.outcome.http_status if link.outcome else None,
                   "final_url": link.outcome.final_url if link.outcome else None,
                   "suggestion": link.outcome.suggestion if link.outcome else None,
                   "note": link.outcome.note if link.outcome else "", "cached": link.cached} for link in found],
    }


def _markdown(found: list[Link]) -> str:
    lines = ["## awrepro links", "", _summary(found), "", "| Status | URL | Where | Note |", "| --- | --- | --- | --- |"]
    for link in found:
        cells = [_status(link), link.url, ", ".join(f"`{w}`" for w in link.where), _note(link)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
