"""What every environment backend provides, and the install steps they share.

A backend makes an empty environment (``create``) and installs packages into it
(``install_command``); everything else — the order of steps, logging, the health check,
the marker — is common and lives in ``envs/__init__.py``.
"""

from __future__ import annotations

import functools
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
    NAME: str

    def create(self, prefix: Path, python: Path) -> list[str]:
        """The command that makes an empty environment at ``prefix`` from interpreter ``python``."""

    def install_command(self, prefix: Path, args: Sequence[str], index: IndexOptions) -> list[str]:
        """The command that installs ``args`` (pip-style) into the environment at ``prefix``."""


def env_python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


@functools.lru_cache(maxsize=1)
def user_pip_settings() -> IndexOptions:
    """find-links, index URLs and constraints from the user's pip configuration (``pip config list``).

    pip reads these itself; uv does not, so the uv backend passes them on (the CPU wheel of
    torch can sit in a local folder that only pip's configuration names).
    """
    from awrepro import process

    done = process.run([sys.executable, "-m", "pip", "config", "list"], timeout=60)
    if not done.ok:
        return IndexOptions()
    values: dict[str, list[str]] = {}
    for line in done.output.splitlines():
        key, _, raw = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        value = raw.strip().strip("'\"")
        if name in ("find-links", "index-url", "extra-index-url", "constraint") and value:
            values.setdefault(name, [])
            for item in shlex.split(value):
                if item not in values[name]:
                    values[name].append(item)
    return IndexOptions(
        find_links=tuple(values.get("find-links", [])),
        index_url=(values.get("index-url") or [None])[0],
        extra_index_urls=tuple(values.get("extra-index-url", [])),
        constraints=tuple(values.get("constraint", [])),
    )
