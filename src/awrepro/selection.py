"""Choosing entries: ids, ``--all``, and the filters shared by ``list``, ``check``, ``fetch`` and ``setup``.

Filters narrow the named entries (or every entry, when no id is named): ``--section`` and
``--tag`` as in ``list``, ``--exclude ID``, ``--failed`` (last recorded status neither passed
nor skipped) and ``--changed`` (resolved spec differs from the last recorded run's, or no run).
(No ``from __future__ import annotations``: NamedTuple would compile each string annotation.)
"""

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from awrepro.errors import UsageError
from awrepro.registry import Entry, LoadedRegistry

if TYPE_CHECKING:
    from awrepro import history

NOT_FAILING = ("passed", "skipped")


class Filters(NamedTuple):
    section: str | None = None
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    failed: bool = False
    changed: bool = False

    @property
    def any(self) -> bool:
        return bool(self.section or self.tags or self.exclude or self.failed or self.changed)

    @property
    def need_history(self) -> bool:
        return self.failed or self.changed


def check_known(registry: LoadedRegistry, section: str | None, tags: tuple[str, ...] | list[str]) -> None:
    """An unknown section or tag is a usage error listing the known ones (a typo must not select nothing)."""
    sections = sorted({p.section for p in registry.papers.values()}, key=str.casefold)
    if section is not None and section.casefold() not in {s.casefold() for s in sections}:
        raise UsageError(f"no section {section!r} in the registry{_close(section, sections)}; "
                         f"known sections: {', '.join(sections)}")
    known_tags = sorted({t for p in registry.papers.values() for t in p.tags})
    unknown = [t for t in tags if t not in known_tags]
    if unknown:
        raise UsageError(f"no tag {unknown[0]!r} in the registry{_close(unknown[0], known_tags)}; "
                         f"known tags: {', '.join(known_tags)}")


def _close(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def matches(entry: Entry, section: str | None, tags: tuple[str, ...] | list[str]) -> bool:
    paper = entry.paper
    if section is not None and paper.section.casefold() != section.casefold():
        return False
    return all(tag in paper.tags for tag in tags)


def choose(registry: LoadedRegistry, ids: list[str], all_: bool, filters: Filters, db: Path | None) -> list[Entry]:
    """The entries a command works on, in registry order of the ids given (or of the registry)."""
    if all_ and ids:
        raise UsageError("give entry ids or --all, not both")
    if not all_ and not ids and not filters.any:
        raise UsageError("name at least one entry (see `awrepro list`), use --all, or choose with "
                         "--tag, --section, --failed or --changed")
    check_known(registry, filters.section, filters.tags)
    entries = registry.select(ids) if ids else registry.entries()
    excluded = {e.full_id for e in registry.select(list(filters.exclude))}
    entries = [e for e in entries if e.full_id not in excluded and matches(e, filters.section, filters.tags)]
    if filters.need_history:
        from awrepro import history

        latest = history.latest(db) if db is not None else {}
        if filters.failed:
            entries = [e for e in entries if e.full_id in latest and latest[e.full_id].status not in NOT_FAILING]
        if filters.changed:
            entries = [e for e in entries if _changed(registry, e, latest.get(e.full_id))]
    return entries


def _changed(registry: LoadedRegistry, entry: Entry, record: "history.Record | None") -> bool:
    from awrepro.spec import spec_digest

    return record is None or record.spec_digest != spec_digest(registry, entry)
