"""The digest of an entry's resolved spec: what a run of it depended on in the registry.

Code, environment and smoke test (with ``[defaults]`` already filled in) and the content of
its patches; not its description or notes, which change nothing a check does. Each result is
recorded with it, so ``--changed`` can tell which entries a registry change touched.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from awrepro.registry import Entry, LoadedRegistry


def _plain(value: Any) -> Any:
    """NamedTuples as dicts (field names count), tuples as lists, dicts with sorted keys (by json)."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def spec_digest(registry: LoadedRegistry, entry: Entry) -> str:
    impl = entry.impl
    if impl is None:
        spec: dict[str, Any] = {"no_code": entry.paper.no_code}
    else:
        patches = []
        for rel in impl.env.patches:
            try:
                patches.append(hashlib.sha256((registry.root / rel).read_bytes()).hexdigest())
            except OSError:
                patches.append(f"unreadable:{rel}")
        spec = {"code": _plain(impl.code), "env": _plain(impl.env), "smoke": _plain(impl.smoke), "patches": patches}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
