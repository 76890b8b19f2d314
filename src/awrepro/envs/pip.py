"""The venv + pip backend: slower, but only needs the interpreter itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from awrepro.envs.base import IndexOptions, env_python

def create(prefix: Path, python: Path) -> list[str]:
    return [str(python), "-m", "venv", str(prefix)]


def install_command(prefix: Path, args: Sequence[str], index: IndexOptions) -> list[str]:
    # pip reads the user's own configuration, so only the entry's options are passed.
    return [str(env_python(prefix)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            *index.as_args(), *args]
