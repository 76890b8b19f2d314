"""The entry `new` writes: its TOML tables, written into a registry with tomlkit.

Only the new tables are added; every other byte of the file stays as it was. The file is
written aside and renamed into place after the whole registry validates, so a failure leaves
the old file untouched.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from awrepro.errors import UsageError

SECTION = "Added by awrepro new"


def slug(text: str) -> str:
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return value or "code"


def paper_table(title: str, year: int) -> dict[str, Any]:
    return {"title": title, "venue": "unknown", "year": year, "section": SECTION}


def insert(text: str, paper_id: str, impl_name: str, impl: dict[str, Any], paper: dict[str, Any] | None) -> str:
    """``text`` with the implementation added (and its paper, when ``paper`` is given)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
    except TOMLKitError as exc:
        raise UsageError(f"the registry to write into is not valid TOML: {exc}") from None
    if "format" not in doc:
        doc.add("format", 1)
    papers = doc.get("papers")
    if papers is None:
        papers = tomlkit.table(is_super_table=True)
        doc.add("papers", papers)
    if paper is not None:
        if paper_id in papers:
            raise UsageError(f"papers.{paper_id} is already in the registry; use --paper {paper_id} to add an "
                             "implementation to it, or --id to name a new one")
        table = tomlkit.table()
        for key, value in paper.items():
            table.add(key, value)
        papers.add(paper_id, table)
    elif paper_id not in papers:
        raise UsageError(f"--paper {paper_id}: no such paper in the registry")
    target = papers[paper_id]
    impls = target.get("impl")
    if impls is None:
        impls = tomlkit.table(is_super_table=True)
        target.add("impl", impls)
    if impl_name in impls:
        raise UsageError(f"papers.{paper_id}.impl.{impl_name} is already in the registry")
    impls.add(impl_name, _table(impl))
    return tomlkit.dumps(doc)


def _table(data: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in data.items():
        if isinstance(value, dict) and key != "vars":
            table.add(key, _table(value))
        elif isinstance(value, str) and "\n" in value:
            table.add(key, tomlkit.string(value, multiline=True))
        elif isinstance(value, list) and value and sum(len(str(v)) for v in value) > 80:
            array = tomlkit.array()
            array.extend(value)
            array.multiline(True)
            table.add(key, array)
        else:
            table.add(key, value)
    return table


def write(into: Path, text: str, patches: dict[str, str], patch_dir: str) -> None:
    """Write the patches, then the registry (validated first), each aside and renamed into place."""
    from awrepro import registry

    into.parent.mkdir(parents=True, exist_ok=True)
    temporary = _aside(into, text)
    try:
        registry.load(temporary)  # the whole file must still validate
        for name, body in patches.items():
            target = into.parent / patch_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(_aside(target, body), target)
        os.replace(temporary, into)
    finally:
        temporary.unlink(missing_ok=True)


def _aside(path: Path, text: str) -> Path:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return Path(name)
