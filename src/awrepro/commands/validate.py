"""``awrepro validate``: every problem of the registry, one line each; never touches the network."""

from __future__ import annotations

import os
from pathlib import Path

from awrepro import console, registry
from awrepro.report import plural
from awrepro.constants import EXIT_OK, EXIT_USAGE
from awrepro.errors import InvalidRegistryError


def run(explicit: Path | None, *, as_json: bool = False) -> int:
    path = registry.discover(explicit, os.environ, Path.cwd())
    if as_json:
        return _as_json(path)
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


def _as_json(path: Path) -> int:
    """The same checks as one JSON object on stdout; exit 2 when there is an error."""
    import json

    data = {"registry": registry.display_path(path), "valid": False, "papers": None, "implementations": None,
            "errors": [], "warnings": []}
    try:
        loaded = registry.load(path)
    except InvalidRegistryError as exc:
        data["errors"] = exc.lines()
    else:
        errors, warnings = registry.problems_beyond_schema(loaded)
        data.update(valid=not errors, errors=errors, warnings=warnings, papers=len(loaded.papers),
                    implementations=sum(1 for e in loaded.entries() if e.impl))
    console.print_plain(json.dumps(data, indent=2, ensure_ascii=False))
    return EXIT_OK if data["valid"] else EXIT_USAGE
