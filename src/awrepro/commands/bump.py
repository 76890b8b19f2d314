"""``awrepro bump ID``: move a git entry's pin to upstream's head (or ``--to REF``), in the file.

Only the ``commit`` value changes (tomlkit keeps comments, order and spacing). A commit younger
than the cooldown is refused: a release that is days old is the one most often yanked or
force-pushed. ``--check`` checks the entry on the new pin and puts the old pin back on failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from awrepro import console, git, registry_file, upstream
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.errors import AwreproError, FetchError, UsageError
from awrepro.model import GitCode
from awrepro.registry import Entry, display_path

DEFAULT_COOLDOWN_DAYS = 7.0


class CooldownError(AwreproError):
    """The new commit is younger than the cooldown: a policy refusal, not bad input."""

    exit_code = EXIT_FAILED


def run(path: Path, entry: Entry, *, to: str | None, cooldown: float, check: Callable[[], int] | None,
        allow_file: bool = False) -> int:
    impl = entry.impl
    if impl is None or not isinstance(impl.code, GitCode):
        raise UsageError(f"{entry.id}: only a git entry has a pin to bump")
    if check is not None and impl.draft:
        raise UsageError(f"{entry.id} is a draft: it has no smoke test to check the new pin with")
    url, old = impl.code.git, impl.code.commit
    new, named = _target(url, to, allow_file)
    if new == old:
        console.success(f"{entry.id}: already pinned at {named} ({old[:12]})")
        return EXIT_OK
    _cool_down(url, new, named, cooldown, allow_file)
    _set_pin(path, entry, new)
    console.success(f"{entry.id}: pin moved {old[:12]} -> {new[:12]} ({named}) in {display_path(path)}")
    if check is None:
        return EXIT_OK
    try:
        code = check()
    except BaseException:  # the check could not run at all (Ctrl-C too): the old pin goes back
        _set_pin(path, entry, old)
        console.error(f"{entry.id}: the check did not finish: the pin is back at {old[:12]} in {display_path(path)}")
        raise
    if code == EXIT_OK:
        console.success(f"{entry.id}: check passed on {new[:12]}; the new pin stays")
        return EXIT_OK
    _set_pin(path, entry, old)
    console.error(f"{entry.id}: check failed on {new[:12]}: the pin is back at {old[:12]} in {display_path(path)}")
    return EXIT_FAILED


def _target(url: str, to: str | None, allow_file: bool) -> tuple[str, str]:
    """The full commit to pin, and how to name it in messages."""
    if to is None:
        head = git.upstream_head(url, allow_file=allow_file)
        return head.head, f"{(head.branch or 'HEAD').removeprefix('refs/heads/')}'s head"
    if re.fullmatch(r"[0-9a-f]{40}", to):
        return to, to[:12]
    return git.resolve_ref(url, to, allow_file=allow_file), to


def _cool_down(url: str, commit: str, named: str, cooldown: float, allow_file: bool) -> None:
    """The commit exists upstream, and is at least ``cooldown`` days old (unless that is 0)."""
    with upstream.Probe(url, allow_file=allow_file) as probe:
        if not probe.fetch_commit(commit):
            raise FetchError(f"commit {commit[:12]} ({named}) not found in {url}")
        when = probe.committed_at(commit)
    if when is None:
        raise FetchError(f"cannot read the date of {commit[:12]} in {url}")
    age = upstream.age_in_days(when)
    if cooldown > 0 and age < cooldown:
        raise CooldownError(
            f"{named} ({commit[:12]}) was committed {when.date().isoformat()}, {age:.1f} days ago: younger than "
            f"the cooldown of {cooldown:g} days; wait, or bump with --cooldown 0")


def _set_pin(path: Path, entry: Entry, commit: str) -> None:
    doc = registry_file.read(path)
    code = registry_file.table_at(doc, ("papers", entry.paper_id, "impl", entry.name or "", "code"))
    code["commit"] = commit
    registry_file.write(path, doc)


def check_on_new_pin(path: Path, entry_id: str, cache: Cache, *, allow_file: bool = False) -> int:
    """``awrepro check ID`` on the registry as it is now (with the new pin); its exit code."""
    from awrepro import registry, runner
    from awrepro.commands import check
    from awrepro.report_files import Reports
    from awrepro.sources import FetchOptions

    loaded = registry.load(path, cache_root=cache.root)
    with cache.in_use():
        return check.run(loaded, cache, loaded.select([entry_id]), jobs=1,
                         options=runner.Options(fetch=FetchOptions(allow_file=allow_file)), db=cache.results_db,
                         reports=Reports(None, None, None), fail_on="any", shard=None)
