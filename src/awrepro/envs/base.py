"""What every environment backend provides, and the install steps they share.

A backend makes an empty environment (``create``) and installs packages into it
(``install_command``); everything else — the order of steps, logging, the health check,
the marker — is common and lives in ``envs/__init__.py``.
"""

from __future__ import annotations

import configparser
import functools
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class IndexOptions:
    """Where packages come from: the entry's options plus the user's pip settings."""

    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    constraints: tuple[str, ...] = field(default=())
    pinned: str | None = None  # a constraints file of the entry's exact pins (see envs._pinned), for builds

    def as_args(self) -> list[str]:
        args: list[str] = []
        for link in self.find_links:
            args += ["--find-links", link]
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for path in self.constraints:
            args += ["--constraint", path]
        return args


class Backend(Protocol):
    def create(self, prefix: Path, python: Path) -> list[str]:
        """The command that makes an empty environment at ``prefix`` from interpreter ``python``."""

    def install_command(self, prefix: Path, args: Sequence[str], index: IndexOptions) -> list[str]:
        """The command that installs ``args`` (pip-style) into the environment at ``prefix``."""


def env_python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


_PIP_KEYS = ("find-links", "index-url", "extra-index-url", "constraint")


@functools.lru_cache(maxsize=1)
def user_pip_settings() -> IndexOptions:
    """find-links, index URLs and constraints from the user's pip configuration.

    pip reads these itself; uv does not, so the uv backend passes them on (the CPU wheel of
    torch can sit in a local folder that only pip's configuration names). Read the way pip
    reads them — its files, [global] then [install], later files and then PIP_* variables
    winning — without running pip, which costs a quarter of a second.
    """
    values: dict[str, str] = {}
    for path in _pip_config_files():
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update({k: v for k, v in parser.items(section) if k in _PIP_KEYS})
    for key in _PIP_KEYS:
        from_env = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if from_env:
            values[key] = from_env
    split = {key: tuple(dict.fromkeys(shlex.split(value))) for key, value in values.items()}
    return IndexOptions(
        find_links=split.get("find-links", ()),
        index_url=(split.get("index-url") or (None,))[0],
        extra_index_urls=split.get("extra-index-url", ()),
        constraints=split.get("constraint", ()),
    )


def _pip_config_files() -> list[Path]:
    """pip's configuration files on Linux and macOS, in the order pip loads them."""
    named = os.environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []  # pip loads no file at all
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if named:
        files.append(Path(named))
    home = Path.home()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf", Path(sys.prefix) / "pip.conf"]
    return [f for f in files if f.is_file()]
