"""Shared fixtures: an isolated HOME and cache, the CLI runner, real git repositories and a git daemon."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from awrepro.cli import main
from tests.gitfixtures import GitDaemon, RepoFactory
from tests.processes import pid_reports  # noqa: F401 (a fixture for every test)

# A suite started as a background job of a script (`cmd &`, nohup) inherits SIGINT ignored, as
# POSIX shells do, and so would every awrepro it starts: its Ctrl-C tests would send a signal
# nobody hears. They test awrepro's Ctrl-C, so the suite's processes start with SIGINT's default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "awrepro tests",
    "GIT_AUTHOR_EMAIL": "tests@awrepro.invalid",
    "GIT_COMMITTER_NAME": "awrepro tests",
    "GIT_COMMITTER_EMAIL": "tests@awrepro.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch HOME, and a default cache folder that cannot be written: tests must choose a cache."""
    home = tmp_path_factory.mktemp("home")
    blocker = home / "no-default-cache"
    blocker.write_text("tests must pass --cache-dir or set AWREPRO_CACHE_DIR\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # any mkdir below a file fails
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for name in ("AWREPRO_CACHE_DIR", "AWREPRO_REGISTRY", "AWREPRO_MIRROR", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _GIT_ENV.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run awrepro through its real entry point, from a scratch folder; returns exit code and output."""
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)

    def run(*args: str, cwd: Path | None = None) -> Result:
        monkeypatch.chdir(cwd or workdir)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def repos(tmp_path: Path) -> RepoFactory:
    """Makes real git repositories with the git CLI; ``repos.bare`` is the folder a daemon serves."""
    return RepoFactory(tmp_path / "git")


@pytest.fixture
def git_daemon(repos: RepoFactory) -> Iterator[GitDaemon]:
    """A real ``git daemon`` on 127.0.0.1 and a free port, serving ``repos.bare``."""
    daemon = GitDaemon(repos.bare)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_inherited_git_dir() -> None:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        os.environ.pop(name, None)
