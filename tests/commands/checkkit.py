"""Helpers for the `awrepro check` tests: registries written as TOML text, and output parsers.

Entries without requirements share one bare uv environment (built in well under a second),
so a registry of many entries stays cheap.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Kept importable from here, beside the other check helpers; they live in tests.processes.
from tests.processes import PidReports as PidReports
from tests.processes import alive as alive
from tests.processes import pid_reports as pid_reports
from tests.processes import pid_sleeper as pid_sleeper
from tests.processes import wait_for as wait_for

RANDOM_COMMIT = "5d41402abc4b2a76b9719d911017c592ae2c8f1e"  # exists in no test repository

# "ID  STATUS[ (LEVEL)]  1.2s[  note]": the plain line the progress board prints per finished entry.
RESULT_LINE = re.compile(r"^(?P<id>\S+)  (?P<status>[a-z-]+)(?: \((?P<level>\w+)\))?  \d+\.\ds(?:  .*)?$")


def toml_str(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string


def paper(pid: str, *, url: str = "", commit: str = "", command: str | None = None, expect: str | None = None,
          timeout: int | None = None, gpu: bool = False, static: str | None = None, steps: list[str] | None = None,
          no_code: str | None = None, level: str | None = None) -> str:
    """One paper with one implementation `main` (or none, with no_code) as registry TOML."""
    lines = [f"[papers.{pid}]", f"title = {toml_str('Paper ' + pid)}", 'venue = "Test"', "year = 2024",
             'section = "Tests"']
    if no_code is not None:
        lines.append(f"no_code = {toml_str(no_code)}")
        return "\n".join(lines) + "\n\n"
    lines += [f"[papers.{pid}.impl.main.code]", f"git = {toml_str(url)}", f"commit = {toml_str(commit)}"]
    if steps is not None:
        lines += [f"[papers.{pid}.impl.main.env]", f"steps = [{', '.join(toml_str(s) for s in steps)}]"]
    lines.append(f"[papers.{pid}.impl.main.smoke]")
    if command is not None:
        lines.append(f"command = {toml_str(command)}")
    if expect is not None:
        lines.append(f"expect = {toml_str(expect)}")
    if timeout is not None:
        lines.append(f"timeout = {timeout}")
    if gpu:
        lines.append("gpu = true")
    if level is not None:
        lines.append(f"level = {toml_str(level)}")
    if static is not None:
        lines += [f"[papers.{pid}.impl.main.smoke.static]", 'reason = "a static check only"',
                  f"command = {toml_str(static)}"]
    return "\n".join(lines) + "\n\n"


def registry(*papers: str) -> str:
    return "format = 1\n\n" + "".join(papers)


@dataclass
class Project:
    """A real repository served by the git daemon."""

    name: str
    url: str
    sha: str


@dataclass
class Workspace:
    """A registry file and a cache folder; ``run`` calls awrepro in-process with both."""

    cli: Any
    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "registry.toml"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def write(self, text: str) -> Path:
        self.registry.write_text(text)
        return self.registry

    def run(self, *args: str):  # -> conftest.Result
        return self.cli("--registry", str(self.registry), "--cache-dir", str(self.cache), *args)

    def argv(self, *args: str) -> list[str]:
        """The same call, for a real subprocess."""
        return [sys.executable, "-m", "awrepro", "--registry", str(self.registry), "--cache-dir", str(self.cache), *args]


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["status"] for r in report["results"]}


def result_lines(out: str) -> list[re.Match[str]]:
    return [m for m in (RESULT_LINE.match(line) for line in out.splitlines()) if m]


def table_row(out: str, entry_id: str) -> list[str]:
    """The cells (split on runs of spaces) of the table row starting with ``entry_id``; the result line is skipped."""
    rows = [line for line in out.splitlines() if line.split(" ", 1)[0] == entry_id and not RESULT_LINE.match(line)]
    assert len(rows) == 1, (entry_id, rows, out)
    return re.split(r"\s{2,}", rows[0].strip())


def processes_started_under(folder: Path) -> list[int]:
    """Pids of live processes whose environment mentions ``folder`` (awrepro sets TMPDIR inside its cache)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            text = environ.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text and int(environ.parent.name) != os.getpid():
            found.append(int(environ.parent.name))
    return found


@pytest.fixture
def project(repos, git_daemon) -> Project:  # noqa: ANN001 (conftest fixtures)
    sha = repos.create("proj", {"README.md": "A paper's code.\n", "smoke.sh": "echo 'smoke OK'\n"})
    return Project("proj", git_daemon.url("proj"), sha)


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture
def ws(cli, tmp_path: Path, uv_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:  # noqa: ANN001
    # conftest makes the default cache folder unwritable; uv (which awrepro runs) needs one of its own.
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    return Workspace(cli, tmp_path)
