"""``awrepro fetch``: each entry's code in the cache at exactly its pinned commit."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from awrepro import console, fetching, sources
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.errors import FetchError, UsageError, space_in
from awrepro.progress import Board
from awrepro.registry import Entry, LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, entries: Sequence[Entry], *, dest: Path | None, jobs: int,
        options: sources.FetchOptions) -> int:
    with_code = [e for e in entries if e.impl is not None]
    targets = {e.id: dest if len(with_code) == 1 else dest / _safe(e.id) for e in with_code} if dest else {}
    for target in targets.values():  # before anything is fetched: a usage error, not a fetch error
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            what = "is not a folder" if not target.is_dir() else "is not empty"
            raise UsageError(f"--dest {target}: exists and {what}; give a new or empty folder")
    for entry in entries:
        if entry.impl is None:
            console.info(f"{entry.id}: {entry.why_not_checked()}")
    logs = cache.new_log_folder("fetch")
    failed: list[str] = []
    located: dict[str, Path] = {}

    def fetch_one(entry: Entry) -> None:
        impl = entry.impl
        assert impl is not None
        board.stage(entry.id, "fetching")
        started = time.monotonic()
        try:
            checkout = fetching.ensure(cache, impl, registry.root, options, logs / f"{_safe(entry.id)}.log")
            where = checkout.root
            if dest is not None:
                board.stage(entry.id, "copying")
                from awrepro import checkouts

                with space_in(targets[entry.id].parent, FetchError):
                    where = checkouts.working_copy(targets[entry.id], impl, registry.root, cache, options)
        except FetchError as exc:
            failed.append(entry.id)
            board.done(entry.id, f"{entry.id}  fetch-error  {exc.message}", style="red")
            return
        located[entry.id] = where
        state = f"fetched in {time.monotonic() - started:.1f}s" if checkout.fetched else "cached"
        board.done(entry.id, f"{entry.id}  {state}  {where}")

    with Board(len(with_code), "fetch") as board:
        if len(with_code) == 1:
            fetch_one(with_code[0])  # the common case: a warm one imports no process machinery at all
        else:
            from awrepro import process

            process.map_interruptibly(fetch_one, with_code, jobs)
    _next_step(located, own_copy=dest is not None, options=options)
    return EXIT_FAILED if failed else EXIT_OK


def _safe(entry_id: str) -> str:
    return entry_id.replace("/", "--")


def _next_step(located: dict[str, Path], *, own_copy: bool, options: sources.FetchOptions) -> None:
    """What to do next, as commands that work as they are printed."""
    if len(located) != 1:
        return
    entry_id, where = next(iter(located.items()))
    console.info(f"Next: cd {where}")
    if own_copy:  # `awrepro run` works in the cache's checkout, not in this copy
        return
    offline = f" --mirror {options.mirror_dir}" if options.mirror_dir else ""
    console.info(f"      or run something in its environment: awrepro run {entry_id}{offline} -- python ...")
