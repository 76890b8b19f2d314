"""``awrepro import LIST.md``: an awesome-list's papers into the registry, as drafts to complete.

Headings become sections, bullets papers. A repository link is pinned to its default branch's
head (``git ls-remote`` through the user's git configuration, so ``insteadOf`` mirrors work); a
link to a page that names no repository (an organisation, a wiki, a personal site) is kept as
``listed_as``. Papers already in the registry are matched by arXiv id, PDF or title and never
overwritten; ``--update`` refreshes their paper metadata from the list.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import tomlkit

from awrepro import awesome, console, git, registry_file
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.errors import FetchError, UsageError
from awrepro.registry import display_path
from awrepro.report import plural

# The paper metadata a list gives, as registry keys; --update refreshes only these.
METADATA = ("title", "venue", "year", "arxiv", "pdf", "section", "summary")
_PINNERS = 8  # ls-remote calls at once


def run(list_path: Path, into: Path, *, update: bool, allow_file: bool = False) -> int:
    listed, problems = awesome.parse(_read(list_path))
    shown = display_path(list_path)
    for problem in problems:
        console.warning(f"{shown}: {problem}")
    doc = registry_file.read(into)
    table = registry_file.papers(doc)
    known = {paper_id: dict(paper) for paper_id, paper in table.items()}
    matched = {paper.line: awesome.find(paper, known) for paper in listed}
    new = [paper for paper in listed if matched[paper.line] is None]
    for paper in new:
        if paper.year is None:
            raise UsageError(f"{shown}:{paper.line}: {paper.title!r}: no year in its brackets and no arXiv id to take it from")
    pins, failures = _pin(new, allow_file)
    for failure in failures:
        console.error(failure)
    if failures:
        console.info(f"nothing written to {display_path(into)}")
        return EXIT_FAILED

    taken = set(known)
    added = updated = 0
    for paper in listed:
        paper_id = matched[paper.line]
        if paper_id is None and awesome.find(paper, known):  # the list names it twice: the first one counts
            console.warning(f"{shown}:{paper.line}: {paper.title!r} is listed again; kept once")
            continue
        if paper_id is None:
            paper_id = awesome.short_id(paper.title, taken)
            taken.add(paper_id)
            known[paper_id] = {"arxiv": paper.arxiv, "pdf": paper.pdf, "title": paper.title}
            table.add(paper_id, _new_paper(paper, pins))
            added += 1
            console.print_plain(f"added    {paper_id}  {_what(paper, pins)}")
        elif update:
            changed = _refresh(table[paper_id], paper)
            if changed:
                updated += 1
                console.print_plain(f"updated  {paper_id}  {', '.join(changed)}")
    if added or updated:
        registry_file.write(into, doc)
    kept = len(listed) - added - (updated if update else 0)
    counts = [f"{added} added", *([f"{updated} updated"] if update else []), f"{kept} already there"]
    console.success(f"{display_path(into)}: {plural(len(listed), 'paper')} in {shown}: {', '.join(counts)}")
    if added:
        console.info("New entries are drafts until they have a smoke test; `awrepro validate` lists them.")
    return EXIT_OK


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{display_path(path)}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {display_path(path)}: {exc}") from None


def _pin(papers: list[awesome.ListedPaper], allow_file: bool) -> tuple[dict[str, git.Upstream], list[str]]:
    """Each new repository's default-branch head, asked of all repositories at once."""
    urls = sorted({p.code.repository for p in papers if p.code and p.code.repository})

    def ask(url: str) -> git.Upstream | str:
        try:
            return git.upstream_head(url, allow_file=allow_file)
        except FetchError as exc:
            return f"cannot pin a new repository: {exc.message}"

    with ThreadPoolExecutor(max_workers=_PINNERS) as pool:
        answers = dict(zip(urls, pool.map(ask, urls)))
    pins = {url: answer for url, answer in answers.items() if isinstance(answer, git.Upstream)}
    return pins, [answer for answer in answers.values() if isinstance(answer, str)]


def _new_paper(paper: awesome.ListedPaper, pins: dict[str, git.Upstream]) -> Any:
    table = tomlkit.table()
    for key in METADATA:
        value = getattr(paper, key)
        if value is not None:
            table.add(key, value)
    code = paper.code
    if code is None:
        return table
    if code.repository is None:
        table.add("listed_as", code.link)
        return table
    upstream = pins[code.repository]
    impls = tomlkit.table(is_super_table=True)
    impl = tomlkit.table(is_super_table=True)
    source = tomlkit.table()
    source.add("git", code.repository)
    branch = (upstream.branch or "HEAD").removeprefix("refs/heads/")
    source.add("commit", tomlkit.item(upstream.head).comment(f"{branch} on {date.today().isoformat()}"))
    if code.subdir:
        source.add("subdir", code.subdir)
    if code.link.rstrip("/") != code.repository:
        source.add("listed_as", code.link)
    impl.add("code", source)
    impls.add(awesome.slug(code.owner) or "code", impl)
    table.add("impl", impls)
    return table


def _what(paper: awesome.ListedPaper, pins: dict[str, git.Upstream]) -> str:
    code = paper.code
    if code is None:
        return "draft: the list links no code"
    if code.repository is None:
        return f"draft: the list links {code.link}, not a repository"
    return f"draft: {code.repository} @ {pins[code.repository].head[:12]}; needs env and smoke"


def _refresh(table: Any, paper: awesome.ListedPaper) -> list[str]:
    """Set the list's metadata on an existing paper; returns the keys that changed.

    A title that differs only in letter case is kept: registries fix a list's capitals.
    """
    changed = []
    for key in METADATA:
        value = getattr(paper, key)
        if value is None or table.get(key) == value:
            continue
        if key == "title" and str(table.get(key, "")).casefold() == value.casefold():
            continue
        table[key] = value
        changed.append(key)
    return changed
