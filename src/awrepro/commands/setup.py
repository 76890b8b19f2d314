"""``awrepro setup``: build (or reuse) each entry's environment and print where it is."""

from __future__ import annotations

import time
from collections.abc import Sequence

from awrepro import console, fetching, process, runner
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.errors import EntrySkipped, EnvSetupError, FetchError
from awrepro.progress import Board
from awrepro.registry import Entry, LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, entries: Sequence[Entry], *, jobs: int, options: runner.Options) -> int:
    logs = cache.new_log_folder("setup")
    failed: list[str] = []
    with_code = [e for e in entries if e.impl is not None]
    for entry in entries:
        if entry.impl is None:
            console.info(f"{entry.id}: {entry.why_not_checked()}")

    def setup_one(entry: Entry) -> None:
        impl = entry.impl
        assert impl is not None
        started = time.monotonic()
        log = logs / f"{entry.full_id.replace('/', '--')}.log"
        try:
            board.stage(entry.id, "fetching")
            checkout = fetching.ensure(cache, impl, registry.root, options.fetch, log)
            board.stage(entry.id, "setting up")
            environment = runner.prepare_env(cache, impl, checkout, options, log)
        except EntrySkipped as exc:
            board.done(entry.id, f"{entry.id}  skipped  {exc.message}", style="yellow")
            return
        except (FetchError, EnvSetupError) as exc:
            failed.append(entry.id)
            kind = "fetch-error" if isinstance(exc, FetchError) else "setup-error"
            board.done(entry.id, f"{entry.id}  {kind}  {exc.message}  (log: {log})", style="red")
            return
        state = f"built in {time.monotonic() - started:.1f}s" if environment.built else "ready"
        board.done(entry.id, f"{entry.id}  {state}  {environment.prefix}")

    with Board(len(with_code), "setup") as board:
        process.map_interruptibly(setup_one, with_code, jobs)
    if len(with_code) == 1 and not failed:
        console.info(f"Next: awrepro run {with_code[0].id} -- python ...")
    return EXIT_FAILED if failed else EXIT_OK
