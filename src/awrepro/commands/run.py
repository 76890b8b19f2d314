"""``awrepro run ID -- CMD``: run any command in the entry's checkout with its environment active."""

from __future__ import annotations

import os
from collections.abc import Sequence

from awrepro import console, envs, fetching, process, runner
from awrepro.cache import Cache
from awrepro.constants import EXIT_INTERRUPTED, EXIT_USAGE
from awrepro.errors import EntrySkipped, UsageError
from awrepro.registry import Entry, LoadedRegistry


def run(registry: LoadedRegistry, cache: Cache, entry: Entry, command: Sequence[str], *, options: runner.Options,
        pass_env: Sequence[str]) -> int:
    impl = entry.impl
    if impl is None:
        raise UsageError(f"{entry.id}: {entry.why_not_checked()}")
    if not command:
        raise UsageError(f"give a command after `--`, e.g. awrepro run {entry.id} -- python -V")
    logs = cache.new_log_folder("run")
    log = logs / f"{entry.full_id.replace('/', '--')}.log"
    checkout = fetching.ensure(cache, impl, registry.root, options.fetch, log)
    try:
        environment = runner.prepare_env(cache, impl, checkout, options, log)
    except EntrySkipped as exc:
        console.error(f"{entry.id}: {exc.message}")
        return EXIT_USAGE
    # The user's own variables stay out, like for smoke tests, except those they name.
    base = process.scrubbed_environ(extra={name: os.environ[name] for name in pass_env if name in os.environ})
    root = environment.root_for(checkout.root)  # an environment that builds in its own copy runs there
    environ = envs.activate(environment.prefix, impl, root, base)
    try:
        code = process.run_interactive(command, cwd=root, env=environ)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if code == 127:
        console.error(f"command not found (or it exited 127): {command[0]}")
    elif code == 126:
        console.error(f"command cannot be executed (or it exited 126): {command[0]}")
    return code
