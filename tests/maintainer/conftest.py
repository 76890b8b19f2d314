"""Fixtures for the maintainer's commands: a git daemon that stands in for GitHub (reached through
``url.<base>.insteadOf`` in the scratch HOME's git configuration, as an internal mirror is)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitfixtures import GitDaemon, git

SEED_LIST = Path(__file__).resolve().parents[1] / "data" / "awesome-transformers.md"  # the seed list, verbatim
ROOT = Path(__file__).resolve().parents[2]


class FakeGitHub:
    """Bare repositories at ``base/github.com/OWNER/REPO.git``, served by a real git daemon."""

    def __init__(self, base: Path, work: Path, daemon: GitDaemon) -> None:
        self.base = base
        self.work = work
        self.daemon = daemon

    def add(self, url: str, files: dict[str, str] | None = None) -> str:
        """A repository at ``https://github.com/OWNER/REPO`` with one commit; returns its sha."""
        path = self._work(url)
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)
        return self.commit(url, files or {"README.md": f"{url}\n"}, "initial")

    def commit(self, url: str, files: dict[str, str], message: str = "change", date: str | None = None) -> str:
        """Commit ``files`` (dated ``date``, ISO, when given) and push it to the served copy."""
        path = self._work(url)
        for rel, content in files.items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(content)
        git("add", "-A", cwd=path)
        env = {**os.environ, **({"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {})}
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=path, env=env, check=True)
        bare = self.bare(url)
        if not bare.exists():
            git("init", "-q", "--bare", "-b", "main", str(bare))
        git("push", "-q", "--force", str(bare), "HEAD:refs/heads/main", cwd=path)
        return git("rev-parse", "HEAD", cwd=path)

    def tag(self, url: str, name: str) -> None:
        git("tag", name, cwd=self._work(url))
        git("push", "-q", str(self.bare(url)), f"refs/tags/{name}", cwd=self._work(url))

    def bare(self, url: str) -> Path:
        return self.base / f"{_path(url)}.git"

    def _work(self, url: str) -> Path:
        return self.work / _path(url)


def _path(url: str) -> str:
    return re.sub(r"^https://", "", url).removesuffix(".git")


@pytest.fixture
def github(tmp_path: Path, isolated_environment: Path) -> Iterator[FakeGitHub]:
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    (isolated_environment / ".gitconfig").write_text(
        f'[url "git://127.0.0.1:{daemon.port}/github.com/"]\n\tinsteadOf = https://github.com/\n')
    try:
        yield FakeGitHub(base, tmp_path / "upstream-work", daemon)
    finally:
        daemon.stop()
