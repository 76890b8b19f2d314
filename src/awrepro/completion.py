"""Shell completion of entry ids, tags and sections, read from the registry in use.

Called by the shell at every <TAB> (typer's ``--install-completion`` sets it up), so it reads
the registry through its validated memo, like ``list`` does, and never fails: a registry that
cannot be read completes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from awrepro.registry import LoadedRegistry


def _registry(params: Mapping[str, Any]) -> LoadedRegistry | None:
    from awrepro import registry
    from awrepro.cache import Cache, resolve_root
    from awrepro.errors import AwreproError

    explicit, cache_dir = (Path(v) if v else None for v in (params.get("registry"), params.get("cache_dir")))
    try:
        path = registry.discover(explicit, os.environ, Path.cwd())
        cache = Cache(resolve_root(cache_dir, os.environ))
        return registry.load(path, cache_root=cache.root, keep_memo=cache.writable())
    except (AwreproError, OSError, ValueError):
        return None


def entry_ids(params: Mapping[str, Any], incomplete: str) -> list[str]:
    """Every id an entry answers to (``paper``, ``paper/impl``, ``paper/*``) starting with ``incomplete``."""
    loaded = _registry(params)
    if loaded is None:
        return []
    names: dict[str, None] = {}
    for entry in loaded.entries():
        names[entry.id] = None
        if entry.name is not None and len(entry.paper.impl) > 1:
            names[f"{entry.paper_id}/*"] = None
    return [name for name in names if name.startswith(incomplete)]


def tags(params: Mapping[str, Any], incomplete: str) -> list[str]:
    loaded = _registry(params)
    found = sorted({t for p in loaded.papers.values() for t in p.tags}) if loaded else []
    return [t for t in found if t.startswith(incomplete)]


def sections(params: Mapping[str, Any], incomplete: str) -> list[str]:
    loaded = _registry(params)
    found = sorted({p.section for p in loaded.papers.values()}) if loaded else []
    return [s for s in found if s.startswith(incomplete)]
