"""Fixtures for environment tests: a local wheel, an offline installer setup and registries.

Nothing here reaches the network: the only package ever installed is ``tinypkg`` (and ``tinyextra``),
wheels written by this file with :mod:`zipfile`, found through ``find_links``; every index is switched
off (``PIP_NO_INDEX``, ``UV_OFFLINE``) and the entry's own ``index_url`` is an empty local folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.gitfixtures import GitDaemon, RepoFactory

PYTHON = f"=={sys.version_info[0]}.{sys.version_info[1]}.*"  # the interpreter running the tests fits
MARKER = "awrepro-env.json"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(folder: Path, name: str, version: str, module_text: str, requires: tuple[str, ...] = (),
                submodules: dict[str, str] | None = None) -> Path:
    """A pure-Python wheel ``NAME-VERSION-py3-none-any.whl`` holding one package (and its ``submodules``,
    name -> text), made without a build backend."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": module_text.encode(),
        **{f"{name}/{sub}.py": text.encode() for sub, text in (submodules or {}).items()},
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: awrepro-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    write_wheel(folder, "tinypkg", "0.1", "VALUE = 42\n")
    write_wheel(folder, "tinyextra", "0.1", "EXTRA = 'x'\n")
    return folder


@pytest.fixture(scope="session")
def empty_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty-index")


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(autouse=True)
def offline_installers(monkeypatch: pytest.MonkeyPatch, uv_cache: Path) -> Iterator[None]:
    """No index for pip or uv and no pip configuration of this machine's; one uv cache for the session.

    The machine's pip configuration (wheel folders, local indexes, constraints) is left out, as on a
    fresh machine; a test that wants one writes its own. awrepro reads it once per process
    (``user_pip_settings`` is cached), so that cache is emptied around each test.
    (The shared conftest points XDG_CACHE_HOME at a file, so uv needs a cache folder of its own.)
    """
    from awrepro.envs.base import user_pip_settings

    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip: load no configuration file at all
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "UV_INDEX_URL",
                 "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_CONSTRAINT", "UV_PYTHON"):
        monkeypatch.delenv(name, raising=False)
    user_pip_settings.cache_clear()
    yield
    user_pip_settings.cache_clear()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


@dataclass
class World:
    """Real repositories behind a real git daemon, a wheel folder, a cache folder, and registries for them."""

    tmp: Path
    repos: RepoFactory
    daemon: GitDaemon
    wheelhouse: Path
    empty_index: Path
    shas: dict[str, str] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    @property
    def envs(self) -> Path:
        return self.cache / "envs"

    def repo(self, name: str = "demo", files: dict[str, str] | None = None) -> str:
        if name not in self.shas:
            self.shas[name] = self.repos.create(name, files or {"README.md": f"# {name}\n", "main.py": "print('hi')\n"})
        return self.shas[name]

    def env(self, **overrides: Any) -> dict[str, Any]:
        """The default environment: this interpreter, tinypkg from the local wheel folder, no index."""
        env: dict[str, Any] = {
            "python": PYTHON,
            "requirements": ["tinypkg==0.1"],
            "find_links": [str(self.wheelhouse)],
            "index_url": self.empty_index.as_uri(),
        }
        env.update(overrides)
        return env

    def registry(self, entries: dict[str, dict[str, Any]], name: str = "registry.toml") -> Path:
        """``entries``: paper id -> {"repo": name, "env": {...}, "smoke": {...}}."""
        lines = ["format = 1", ""]
        for paper_id, spec in entries.items():
            repo = spec.get("repo", "demo")
            sha = self.repo(repo)
            lines += [f"[papers.{paper_id}]", f'title = "Paper {paper_id}"', 'venue = "arXiv"', "year = 2020",
                      'section = "Tests"', "",
                      f"[papers.{paper_id}.impl.main.code]", f"git = {toml_value(self.daemon.url(repo))}",
                      f'commit = "{sha}"', "", f"[papers.{paper_id}.impl.main.env]"]
            lines += [f"{key} = {toml_value(value)}" for key, value in spec.get("env", self.env()).items()]
            lines += ["", f"[papers.{paper_id}.impl.main.smoke]"]
            smoke = spec.get("smoke", {"command": "python -c 'import tinypkg'"})
            lines += [f"{key} = {toml_value(value)}" for key, value in smoke.items()]
            lines.append("")
        path = self.tmp / name
        path.write_text("\n".join(lines))
        return path

    def args(self, registry: Path) -> list[str]:
        return ["--registry", str(registry), "--cache-dir", str(self.cache)]

    def markers(self) -> list[Path]:
        return sorted(self.envs.glob(f"*/{MARKER}")) if self.envs.is_dir() else []

    def env_dirs(self) -> list[Path]:
        return sorted(p for p in self.envs.iterdir() if p.is_dir()) if self.envs.is_dir() else []


@pytest.fixture
def world(tmp_path: Path, repos: RepoFactory, git_daemon: GitDaemon, wheelhouse: Path, empty_index: Path) -> World:
    return World(tmp_path, repos, git_daemon, wheelhouse, empty_index)


def printed_paths(out: str) -> dict[str, Path]:
    """``ID  STATE  PATH`` lines of ``setup`` and ``fetch``: entry id -> the path printed last on its line."""
    found = {}
    for line in out.splitlines():
        parts = line.split("  ")
        if len(parts) >= 3 and parts[-1].startswith("/"):
            found[parts[0]] = Path(parts[-1].strip())
    return found
