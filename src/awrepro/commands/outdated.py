"""``awrepro outdated``: each git entry's pin against its upstream default branch.

The head comes from ``git ls-remote``; dates and how far behind from a commits-only fetch
(``upstream.Probe``). One query per repository, all repositories at once.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime

from awrepro import console, git, upstream
from awrepro.constants import EXIT_OK
from awrepro.errors import FetchError
from awrepro.model import GitCode
from awrepro.registry import Entry
from awrepro.report import plural, print_table

# States of a pin, in the order they are listed.
STATES = ("vanished", "unreachable", "moved", "off-branch", "behind", "up-to-date")
STYLES = {"vanished": "bold red", "unreachable": "red", "moved": "yellow", "off-branch": "yellow", "behind": "cyan",
          "up-to-date": "green"}
_QUERIES = 8


@dataclass(frozen=True)
class Drift:
    id: str
    url: str
    pin: str
    state: str
    pin_date: str | None = None
    pin_age_days: int | None = None
    branch: str | None = None
    head: str | None = None
    head_date: str | None = None
    behind: int | None = None
    moved_to: str | None = None
    note: str = ""


def run(entries: list[Entry], *, as_json: bool, allow_file: bool = False) -> int:
    by_repo: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        code = entry.impl.code if entry.impl else None
        if isinstance(code, GitCode):  # an archive has no upstream to compare with
            by_repo.setdefault((code.git, code.commit), []).append(entry)
    with ThreadPoolExecutor(max_workers=_QUERIES) as pool:
        answers = dict(zip(by_repo, pool.map(lambda key: drift_of(*key, allow_file=allow_file), by_repo)))
    rows = [Drift(**{**asdict(answers[key]), "id": entry.id}) for key, group in by_repo.items() for entry in group]
    rows.sort(key=lambda row: (STATES.index(row.state), row.id))
    if as_json:
        console.print_plain(json.dumps([asdict(row) for row in rows], indent=2))
        return EXIT_OK
    table = [(row.id, row.state, row.pin[:12], row.pin_date or "", _age(row.pin_age_days), (row.head or "")[:12],
              "" if row.behind is None else str(row.behind), row.note) for row in rows]
    print_table(("ID", "State", "Pin", "Pinned commit's date", "Age", "Upstream", "Behind", "Note"), table,
                shrink=("Note",), styles=STYLES)
    counts = {state: sum(1 for row in rows if row.state == state) for state in STATES}
    console.out().print(f"{plural(len(rows), 'pin')}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
                        style="bold")
    return EXIT_OK


def _age(days: int | None) -> str:
    return "" if days is None else f"{days} d"


def drift_of(url: str, pin: str, *, allow_file: bool = False) -> Drift:
    """Where ``pin`` stands against ``url``'s default branch."""
    try:
        head = git.upstream_head(url, allow_file=allow_file)
    except FetchError as exc:
        state = "vanished" if exc.message.startswith("repository not found") else "unreachable"
        return Drift("", url, pin, state, note=exc.message)
    branch = (head.branch or "HEAD").removeprefix("refs/heads/")
    with upstream.Probe(url, allow_file=allow_file) as probe:
        probe.fetch_branch(head.branch or "HEAD")
        if not probe.has(pin):
            probe.fetch_commit(pin)
        pinned_at = probe.committed_at(pin)
        head_at = probe.committed_at(head.head)
        behind = probe.behind(pin) if probe.has(pin) else None
    if head.moved_to:
        state, note = "moved", f"moved to {head.moved_to}: update the registry's URL"
    elif pin == head.head:
        state, note = "up-to-date", ""
    elif behind is not None:
        state, note = "behind", f"awrepro bump to move the pin to {branch}'s head"
    elif pinned_at is not None:
        state, note = "off-branch", f"the pin is not on {branch} (another branch, or history rewritten)"
    else:
        state, note = "vanished", f"commit {pin[:12]} is gone upstream (force-pushed away?)"
    return Drift("", url, pin, state, _day(pinned_at), _days(pinned_at), branch, head.head, _day(head_at), behind,
                 head.moved_to, note)


def _day(when: datetime | None) -> str | None:
    return when.date().isoformat() if when is not None else None


def _days(when: datetime | None) -> int | None:
    return int(upstream.age_in_days(when)) if when is not None else None
