"""Registry entries as plain data: the stable JSON shapes of ``list --json`` and ``show --json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from awrepro.model import Code, GitCode, Paper
from awrepro.registry import Entry

if TYPE_CHECKING:
    from awrepro.history import Record


def short_title(title: str, limit: int = 48) -> str:
    """The part before the colon, cut to ``limit`` characters."""
    head = title.split(":")[0].strip() or title
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


def code_summary(entry: Entry) -> str:
    return entry.impl.code.short() if entry.impl else ("draft" if entry.draft else "no code")


def code_data(code: Code) -> dict[str, Any]:
    git = code if isinstance(code, GitCode) else None
    return {
        "kind": code.kind,
        "url": code.url,
        "commit": git.commit if git else None,
        "sha256": None if git else code.pin,
        "subdir": code.subdir,
        "sparse": list(git.sparse) if git else [],
        "official": code.official,
        "listed_as": code.listed_as,
        "submodules": git.submodules if git else False,
    }


def status_data(record: Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "status": record.status,
        "level": record.level,
        "stage": record.stage,
        "note": record.note,
        "at": record.finished_at,
        "run": record.run_id,
    }


def implementation_data(entry: Entry, record: Record | None, *, full: bool = False) -> dict[str, Any]:
    impl = entry.impl
    assert impl is not None
    data: dict[str, Any] = {
        "id": entry.id,
        "name": entry.name,
        "primary": entry.primary,
        "description": impl.description,
        "notes": list(impl.notes),
        "code": code_data(impl.code),
        "last_status": status_data(record),
    }
    if full:
        data["env"] = impl.env._asdict()
        smoke = impl.smoke._asdict()
        smoke["static"] = impl.smoke.static._asdict() if impl.smoke.static else None
        data["smoke"] = smoke
    return data


def paper_data(paper_id: str, paper: Paper, entries: list[Entry], records: dict[str, Record], *, full: bool = False) -> dict[str, Any]:
    return {
        "id": paper_id,
        "title": paper.title,
        "authors": list(paper.authors),
        "venue": paper.venue,
        "year": paper.year,
        "arxiv": paper.arxiv,
        "pdf": paper.pdf,
        "section": paper.section,
        "summary": paper.summary,
        "tags": list(paper.tags),
        "no_code": paper.no_code,
        "implementations": [
            implementation_data(e, records.get(e.full_id), full=full) for e in entries if e.impl is not None
        ],
    }
