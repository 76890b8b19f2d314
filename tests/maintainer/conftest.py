"""Fixtures for the maintainer's commands: a git daemon that stands in for GitHub (reached through
``url.<base>.insteadOf`` in the scratch HOME's git configuration, as an internal mirror is)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
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

    def side_branch(self, url: str, branch: str) -> str:
        """A commit on ``branch`` only (not on main), published; returns its sha."""
        path = self._work(url)
        git("checkout", "-q", "-b", branch, cwd=path)
        git("commit", "-q", "--allow-empty", "-m", f"on {branch}", cwd=path)
        sha = git("rev-parse", "HEAD", cwd=path)
        git("push", "-q", str(self.bare(url)), f"{branch}:refs/heads/{branch}", cwd=path)
        git("checkout", "-q", "main", cwd=path)
        return sha

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


# A smoke test that passes until the file FLAG exists.
FAILS_ONCE_FLAG_EXISTS = '''script = """
import pathlib, sys
flag = pathlib.Path(r'{flag}')
print('FLAG is there: failing' if flag.exists() else 'no FLAG: passing')
sys.exit(flag.exists())
"""'''

# Papers of the seed list (matched by arXiv id), with real code behind git daemon and smoke tests
# that pass, fail (once FLAG exists), pass statically, or do not exist yet (a draft).
CHECKED_REGISTRY = '''format = 1

[papers.ptm-survey]
title = "Pre-trained Models for Natural Language Processing: A Survey"
venue = "Science China Technological Sciences"
year = 2020
arxiv = "2003.08271"
pdf = "https://arxiv.org/pdf/2003.08271.pdf"
section = "Survey"
no_code = "A survey."

[papers.reformer]
title = "Reformer: The Efficient Transformer"
venue = "ICLR"
year = 2020
arxiv = "2001.04451"
pdf = "https://arxiv.org/pdf/2001.04451.pdf"
section = "Sparse Transformers"

[papers.reformer.impl.google.code]
git = "https://github.com/google/trax"
commit = "{trax}"

[papers.reformer.impl.google.smoke]
command = "true"
gpu = true

[papers.reformer.impl.google.smoke.static]
reason = "needs a GPU here"
command = "test -f model.py"

[papers.longformer]
title = "Longformer: The Long-Document Transformer"
venue = "arXiv"
year = 2020
arxiv = "2004.05150"
pdf = "https://arxiv.org/pdf/2004.05150.pdf"
section = "Sparse Transformers"

[papers.longformer.impl.allenai.code]
git = "https://github.com/allenai/longformer"
commit = "{longformer}"

[papers.longformer.impl.allenai.smoke]
command = "test -f model.py"

[papers.longformer.impl.port.code]
git = "https://github.com/someone/longformer-port"
commit = "{port}"

[papers.longformer.impl.port.smoke]
{fails_once_flag_exists}

[papers.linformer]
title = "Linformer: Self-Attention with Linear Complexity"
venue = "arXiv"
year = 2020
arxiv = "2006.04768"
pdf = "https://arxiv.org/pdf/2006.04768.pdf"
section = "Sparse Transformers"

[papers.linformer.impl.fairseq.code]
git = "https://github.com/facebookresearch/fairseq"
commit = "{fairseq}"

[papers.linformer.impl.fairseq.smoke]
{fails_once_flag_exists}

[papers.muse]
title = "MUSE: Parallel Multi-Scale Attention for Sequence to Sequence Learning"
venue = "arXiv"
year = 2019
arxiv = "1911.09483"
pdf = "https://arxiv.org/pdf/1911.09483.pdf"
section = "Sparse Transformers"

[papers.muse.impl.lancopku.code]
git = "https://github.com/lancopku/Prime"
commit = "{prime}"
'''


@dataclass
class Checked:
    registry: Path
    cache: Path
    report: Path  # the JSON report of the second `check --all`


@pytest.fixture
def checked(cli, github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Checked:
    """A registry of five seed-list papers checked for real twice: the second time linformer and the
    longformer port fail (their FLAG appeared)."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    names = {"trax": "https://github.com/google/trax", "longformer": "https://github.com/allenai/longformer",
             "port": "https://github.com/someone/longformer-port", "fairseq": "https://github.com/facebookresearch/fairseq",
             "prime": "https://github.com/lancopku/Prime"}
    shas = {key: github.add(url, {"model.py": "print('model')\n"}) for key, url in names.items()}
    cache = tmp_path / "cache"
    flag = cache / "FLAG"  # smoke tests see the cache (the sandbox hides the rest of /tmp)
    registry = tmp_path / "registry.toml"
    registry.write_text(CHECKED_REGISTRY.format(fails_once_flag_exists=FAILS_ONCE_FLAG_EXISTS.format(flag=flag), **shas))
    common = ("--registry", str(registry), "--cache-dir", str(cache), "check", "--all", "-j", "2", "--fail-on", "never")
    first = cli(*common, "--json", str(tmp_path / "first.json"))
    assert first.code == 0, first.out + first.err
    flag.write_text("now it fails\n")
    second = cli(*common, "--json", str(tmp_path / "second.json"))
    assert second.code == 0, second.out + second.err
    return Checked(registry, cache, tmp_path / "second.json")
