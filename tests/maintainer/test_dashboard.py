"""``awrepro report html``: the dashboard opened from file:// in a real headless Chromium."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.maintainer.browser import dump_dom, rows_of, screenshot
from tests.maintainer.conftest import Checked


def test_dashboard_shows_every_entry_with_its_history_and_filters(cli, checked: Checked, tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = cli("--registry", str(checked.registry), "--cache-dir", str(checked.cache), "report", "html", str(site),
                 "--report", str(checked.report))
    assert result.code == 0, result.err
    page = (site / "index.html").read_text()
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "<link" not in page
    assert "src=" not in page  # nothing to fetch: styles, script and strips are inline

    reported = [item["id"] for item in json.loads(checked.report.read_text())["results"]]
    dom = dump_dom((site / "index.html").as_uri() + "?q=linformer")
    table = rows_of(dom)
    ids = [row["cells"][0] for row in table.rows]  # type: ignore[index]
    assert ids == reported == ["ptm-survey", "reformer", "longformer", "longformer/port", "linformer", "muse"]
    by_id = {row["cells"][0]: row for row in table.rows}  # type: ignore[index]
    assert by_id["longformer"]["rects"] == ["passed", "passed"]  # two runs, oldest first
    assert by_id["linformer"]["rects"] == ["passed", "failing"]
    assert by_id["reformer"]["rects"] == ["static", "static"]
    assert by_id["ptm-survey"]["rects"] == ["skipped", "skipped"]
    assert by_id["linformer"]["cells"][2].startswith("failed since ")  # type: ignore[index]
    assert by_id["ptm-survey"]["cells"][2] == "no code"  # type: ignore[index]
    assert by_id["muse"]["cells"][2] == "draft"  # type: ignore[index]
    smoke_time = by_id["longformer"]["cells"][6]  # type: ignore[index]
    assert smoke_time.endswith(" s")  # time per stage, from the report
    assert "FLAG is there: failing" in by_id["linformer"]["cells"][9]  # type: ignore[index]  # a failure shows its log tail
    # The filter ran in the page: only linformer's row is left.
    assert [row["cells"][0] for row in table.rows if not row["hidden"]] == ["linformer"]  # type: ignore[index]
    assert table.count == "1 of 6 shown"

    shot = tmp_path / "dashboard.png"
    screenshot((site / "index.html").as_uri(), shot)
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1500, 1100)
