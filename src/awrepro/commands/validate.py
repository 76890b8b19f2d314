"""``awrepro validate``: every problem of the registry, one line each; never touches the network."""

from __future__ import annotations

import os
from pathlib import Path

from awrepro import console, registry
from awrepro.report import plural
from awrepro.errors import InvalidRegistryError


def run(explicit: Path | None) -> int:
    path = registry.discover(explicit, os.environ, Path.cwd())
    loaded = registry.load(path)  # schema problems raise InvalidRegistryError
    errors, warnings = registry.problems_beyond_schema(loaded)
    for line in warnings:
        console.warning(line)
    if errors:
        raise InvalidRegistryError(errors)
    entries = loaded.entries()
    impls = sum(1 for e in entries if e.impl)
    counts = [plural(len(loaded.papers), "paper"), plural(impls, "implementation")]
    if warnings:
        counts.append(plural(len(warnings), "warning"))
    console.success(f"{registry.display_path(path)}: valid ({', '.join(counts)})")
    return 0
