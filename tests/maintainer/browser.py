"""Debian's real headless Chromium, driven from the command line (``--dump-dom``, ``--screenshot``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="awrepro-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran."""
    return _chromium("--virtual-time-budget=5000", "--dump-dom", url)


def screenshot(url: str, path: Path, width: int = 1500, height: int = 1100) -> None:
    _chromium(f"--window-size={width},{height}", f"--screenshot={path}", url)


class Rows(HTMLParser):
    """The dashboard's table rows: each row's cells' text, whether it is hidden, its SVG cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.count = ""
        self._in_body = False
        self._cell: list[str] | None = None
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append({"hidden": "hidden" in found, "cells": [], "rects": []})
        elif tag == "td" and self.rows and self._in_body:
            self._cell = []
        elif tag == "rect" and self.rows:
            self.rows[-1]["rects"].append(found.get("class"))  # type: ignore[attr-defined]
        elif tag == "p" and found.get("id") == "count":
            self._in_count = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))  # type: ignore[attr-defined]
            self._cell = None
        elif tag == "p":
            self._in_count = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_count:
            self.count += data


def rows_of(dom: str) -> Rows:
    parser = Rows()
    parser.feed(dom)
    return parser
