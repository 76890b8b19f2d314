"""The uv backend (the default): fast installs, packages hard-linked from uv's cache."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path

from awrepro.envs.base import IndexOptions, env_python


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def uv_binary() -> str:
    """The uv executable that ships with the ``uv`` package awrepro depends on."""
    from uv import find_uv_bin

    # find_uv_bin reads sysconfig, whose first use is not thread-safe (parallel setups call this).
    with _lock:
        return str(find_uv_bin())


def create(prefix: Path, python: Path) -> list[str]:
    return [uv_binary(), "venv", "--quiet", "--no-python-downloads", "--python", str(python), str(prefix)]


def install_command(prefix: Path, args: Sequence[str], index: IndexOptions) -> list[str]:
    # The entry's exact pins also bind the packages an isolated build installs (a setup.py importing torch).
    build = ["--build-constraint", index.pinned] if index.pinned else []
    return [uv_binary(), "pip", "install", "--no-python-downloads", "--python", str(env_python(prefix)),
            *index.as_args(), *build, *args]
