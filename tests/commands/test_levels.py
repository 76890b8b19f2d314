"""The `import` level, between `static` and `smoke`: a smoke test that only imports the model modules says so."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.commands.checkkit import (
    Project,
    Workspace,
    load_json,
    paper,
    project,  # noqa: F401 (fixture)
    registry,
    result_lines,
    table_row,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)


def test_a_pass_shows_its_level_everywhere(ws: Workspace, project: Project) -> None:
    url, sha = project.url, project.sha
    ws.write(registry(
        paper("fwd", url=url, commit=sha, command="python -c \"print('OK')\""),
        paper("imp", url=url, commit=sha, command="python -c \"import json\"", level="import"),
        paper("stat", url=url, commit=sha, static="true"),
    ))
    done = ws.run("check", "--all", "-j", "1", "--json", str(ws.root / "r.json"), "--junit", str(ws.root / "r.xml"),
                  "--markdown", str(ws.root / "r.md"))
    assert done.code == 0, done.out + done.err

    levels = {r["id"]: r["level"] for r in load_json(ws.root / "r.json")["results"]}
    assert levels == {"fwd": "smoke", "imp": "import", "stat": "static"}
    assert {m["id"]: m["level"] for m in result_lines(done.out)} == {"fwd": "smoke", "imp": "import", "stat": "static"}
    assert table_row(done.out, "imp")[1:3] == ["passed", "import"]
    cases = {c.get("name"): c for c in ET.parse(ws.root / "r.xml").getroot().iter("testcase")}
    assert cases["imp"].findtext("system-out") == "passed at the import level"
    assert cases["fwd"].find("system-out") is None
    assert "| `imp` | ✅ passed | import |" in (ws.root / "r.md").read_text()

    listed = ws.run("list")
    assert [line for line in listed.out.splitlines() if line.startswith("imp ")][0].rstrip().endswith("passed (import)")
    shown = ws.run("show", "imp")
    assert "level import" in shown.out
    [run] = [line.split() for line in ws.run("history", "imp").out.splitlines() if line.startswith("1 ")]
    assert run[2:4] == ["passed", "import"]


def test_a_smoke_test_cannot_claim_the_static_level(ws: Workspace, project: Project) -> None:
    ws.write(registry(paper("odd", url=project.url, commit=project.sha, command="true", level="static")))
    done = ws.run("validate")
    assert done.code == 2
    assert "papers.odd.impl.main.smoke.level: must be one of 'smoke', 'import', not 'static'" in done.err
