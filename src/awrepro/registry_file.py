"""Editing the registry file itself (tomlkit): comments, order and spacing of what is there stay.

Every write is checked first: the new text must still be a valid registry, and it replaces the
file with a rename, so a failed edit leaves the file as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import tomlkit
from tomlkit.container import Container
from tomlkit.items import Table

from awrepro import registry
from awrepro.constants import REGISTRY_FORMAT
from awrepro.errors import InvalidRegistryError, UsageError
from awrepro.report_files import write_atomic

NEW_FILE_HEADER = "awrepro registry (format: docs/registry-format.md in awrepro's repository)"


def read(path: Path) -> tomlkit.TOMLDocument:
    """The registry as an editable document; a missing or empty file gives a new one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {registry.display_path(path)}: {exc}") from None
    if not text.strip():
        doc = tomlkit.document()
        doc.add(tomlkit.comment(NEW_FILE_HEADER))
        doc.add("format", REGISTRY_FORMAT)
        return doc
    registry.load(path)  # an invalid registry is reported as it is, never edited
    return tomlkit.parse(text)


def papers(doc: tomlkit.TOMLDocument) -> Table | Container:
    """The ``papers`` table, made (as a table of ``[papers.ID]`` tables) when there is none."""
    if "papers" not in doc:
        doc.add(tomlkit.nl())
        doc.add("papers", tomlkit.table(is_super_table=True))
    return cast("Table | Container", doc["papers"])


def table_at(doc: tomlkit.TOMLDocument, loc: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in loc:
        node = node[key]
    return node


def write(path: Path, doc: tomlkit.TOMLDocument) -> str:
    """Check that ``doc`` is a valid registry, then replace ``path`` with it; returns the text."""
    text = tomlkit.dumps(doc)
    shown = registry.display_path(path)
    try:
        registry.validate_text(text, shown)
    except InvalidRegistryError as exc:
        raise InvalidRegistryError([f"not writing {shown}: the result would be invalid", *exc.lines()]) from None
    write_atomic(path, text)
    return text
