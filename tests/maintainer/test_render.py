"""``awrepro render``: statuses written into the real seed list, idempotently, between markers."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

from tests.maintainer.conftest import SEED_LIST, Checked

MARKED = re.compile(r"<!-- awrepro:status -->.*?<!-- /awrepro:status -->")


def _status_of(text: str, needle: str) -> str:
    """The status on the paper's line (or the next: a bullet that wraps has it on its links' line)."""
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if needle in line)
    found = re.search(r"<sub>\[(.*?)\]\((.*?)\)</sub>", lines[index] + lines[index + 1])
    assert found, lines[index]
    return found.group(1)


def test_render_writes_each_status_after_its_line_and_is_idempotent(cli, checked: Checked, tmp_path: Path) -> None:
    listing = tmp_path / "awesome.md"
    shutil.copyfile(SEED_LIST, listing)
    original = listing.read_text()
    common = ("--registry", str(checked.registry), "--cache-dir", str(checked.cache), "render")

    stale = cli(*common, str(listing), "--check")
    assert stale.code == 1 and "is out of date: run `awrepro render" in stale.err
    assert listing.read_text() == original  # --check changes nothing

    first = cli(*common, str(listing), "--link", "https://lab.example/awrepro/")
    assert first.code == 0, first.err
    assert "15 paper(s) not in" in first.err  # the seed list has 20; this registry 5
    text = listing.read_text()
    today = date.today().isoformat()
    assert _status_of(text, "Longformer: The Long-Document Transformer") == f"✅ runs (smoke) · {today}"
    assert _status_of(text, "REFORMER") == f"🟡 static only · {today}"
    assert _status_of(text, "Linformer") == f"❌ failed since {today}"
    assert _status_of(text, "Pre-trained Models") == "⛔ no code"
    assert _status_of(text, "MUSE") == "📝 draft"
    assert "](https://lab.example/awrepro/)</sub>" in text
    # Longformer's bullet wraps: its status goes on the line with its links, not its title's.
    lines = text.splitlines()
    title_line = lines.index("* Longformer: The Long-Document Transformer")
    assert "<!-- awrepro:status -->" in lines[title_line + 1]
    # Nothing outside the markers changed (trailing spaces, Markdown line breaks, included).
    assert MARKED.sub("", text) == original
    assert text.count("<!-- awrepro:status -->") == 5

    second = cli(*common, str(listing), "--link", "https://lab.example/awrepro/")
    assert second.code == 0 and "up to date" in second.out
    assert listing.read_text() == text
    again = cli(*common, str(listing), "--link", "https://lab.example/awrepro/", "--check")
    assert again.code == 0
