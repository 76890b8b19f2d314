"""``--dry-run``: what ``fetch``, ``setup`` or ``check`` would do, one line per entry.

Read only: nothing is fetched (no network), built or written to the cache. It looks at what
is cached, which interpreter would be used, and which level a check would run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from awrepro import console, envs, interpreters, runner, sources
from awrepro.cache import Cache
from awrepro.constants import EXIT_OK
from awrepro.errors import AwreproError, EntrySkipped
from awrepro.model import ArchiveCode, Implementation
from awrepro.registry import Entry, LoadedRegistry

STAGES = ("fetch", "setup", "check")  # what each command goes up to


def run(registry: LoadedRegistry, cache: Cache, entries: Sequence[Entry], options: runner.Options,
        upto: str) -> int:
    width = max((len(e.id) for e in entries), default=0)
    for entry in entries:
        console.print_plain(f"{entry.id:<{width}}  {entry_plan(registry, cache, entry, options, upto)}")
    counts = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
    console.info(f"dry run: {counts}; nothing was fetched, built or run")
    return EXIT_OK


def entry_plan(registry: LoadedRegistry, cache: Cache, entry: Entry, options: runner.Options, upto: str) -> str:
    try:
        mode = runner.entry_mode(entry, options) if upto == "check" else None
    except EntrySkipped as exc:
        return f"skipped: {exc.message}"
    impl = entry.impl
    if impl is None:
        return f"skipped: {entry.why_not_checked()}"
    parts = []
    try:
        code = _code(registry, cache, impl, options)
        parts.append(code.line)
        if upto != "fetch":
            parts.append(_env(cache, impl, code, options, mode))
    except EntrySkipped as exc:
        return "; ".join([*parts, f"skipped: {exc.message}"])
    except AwreproError as exc:
        return "; ".join([*parts, f"would fail: {exc.message}"])
    if mode is not None:
        parts.append(_level(impl, mode))
    return "; ".join(parts)


class _Code(NamedTuple):
    root: Path | None  # where the code is in the cache; None when it is not there yet
    key: str  # the checkout's key
    line: str


def _code(registry: LoadedRegistry, cache: Cache, impl: Implementation, options: runner.Options) -> _Code:
    patches = [text for _, text in sources.read_patches(impl, registry.root)]
    key = sources.checkout_key(impl, patches)
    root = envs.cached_root(cache, impl, patches, key)
    code = impl.code
    if root is not None:
        return _Code(root, key, f"code cached ({root})")
    where = f"the mirror {options.fetch.mirror_dir}" if options.fetch.mirror_dir else code.url
    if isinstance(code, ArchiveCode):
        return _Code(None, key, f"code: download {code.archive} (sha256 {(code.sha256 or '')[:12]}) from {where}")
    from awrepro import git

    mirror = sources.mirror_path(cache, code.git)
    have = (mirror / "HEAD").is_file() and git.has_pin(mirror, code.commit)
    pin = code.commit[:12]
    return _Code(None, key, f"code: check out {pin} (already in the cache's mirror)" if have
                 else f"code: fetch {pin} from {where}")


def _env(cache: Cache, impl: Implementation, code: _Code, options: runner.Options, mode: str | None) -> str:
    static = impl.smoke.static
    if mode == runner.Mode.STATIC and static is not None and static.python:
        found = interpreters.find(static.python)
        if found is None:
            raise EntrySkipped(f"static check needs Python {static.python}; none found")
        return f"no environment (static check with Python {found.version} {found.path})"
    if code.root is None:  # the environment's key needs the code (its requirements file)
        interpreter = interpreters.find(impl.env.python)
        if interpreter is None:
            raise EntrySkipped(f"needs Python {impl.env.python}; none found (see README: adding an interpreter)")
        backend = options.backend or impl.env.backend
        return f"env: build ({backend}, Python {interpreter.version}; exact spec known once the code is here)"
    the_plan = envs.plan(impl, code.root, code.key, options.backend)
    prefix = envs.location(cache, the_plan.key())
    if envs.ready(prefix, the_plan.key()):
        return f"env ready ({prefix})"
    return f"env: build ({the_plan.backend}, Python {the_plan.interpreter.version}) at {prefix}"


def _level(impl: Implementation, mode: str) -> str:
    if mode == runner.Mode.SMOKE:
        smoke = impl.smoke
        what = f"command {smoke.command!r}" if smoke.command else "inline script"
        return f"run smoke ({what}, timeout {smoke.timeout} s)"
    static = impl.smoke.static
    assert static is not None
    why = "needs a GPU" if impl.smoke.runnable else "no smoke test"
    return f"run static ({why}; {static.reason})"
