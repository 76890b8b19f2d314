"""The fetch modules import in one direction: no circle, lazy (in-function) imports counted too.

fetching → checkouts, archives → sources, staging. A circle would let a warm ``fetch`` pull in
the builders' git and tempfile code, and makes every change to one of them touch the others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import awrepro

SRC = Path(awrepro.__file__).parent
LAYER = ("sources", "staging", "checkouts", "archives", "fetching")


def _imports(name: str) -> set[str]:
    tree = ast.parse((SRC / f"{name}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):  # every import, at the top or inside a function
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.removeprefix("awrepro.").split(".")[0])
            if node.module == "awrepro":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("awrepro.").split(".")[0] for alias in node.names)
    return found & set(LAYER)


def test_no_import_circle_between_sources_checkouts_and_archives() -> None:
    graph = {name: _imports(name) for name in LAYER}
    assert graph["sources"] == set() and graph["staging"] == set(), graph

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start])

    assert [name for name in LAYER if reaches(name, name)] == []
