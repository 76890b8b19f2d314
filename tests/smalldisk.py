"""A really small filesystem for tests of a full disk: a tmpfs of a few MiB mounted on a folder.

``mount -t tmpfs -o size=N`` needs root, which the test machines and CI have; elsewhere the tests
that need it are skipped with the reason. Unmounted when the test ends, whatever happened.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MiB = 1024 * 1024


@contextmanager
def small_disk(folder: Path, size: int, *, inodes: int | None = None) -> Iterator[Path]:
    """``folder`` (made if needed) as a tmpfs of ``size`` bytes (rounded up to pages) and, if given,
    room for only ``inodes`` files and folders (itself included)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        if os.geteuid() == 0:
            raise AssertionError(f"mount -t tmpfs failed as root: {done.stderr.strip()}")
        pytest.skip(f"a small filesystem needs root (mount -t tmpfs): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def used(folder: Path) -> int:
    """Bytes in use on the filesystem of ``folder``, as the kernel counts them."""
    info = os.statvfs(folder)
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def free(folder: Path) -> int:
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize
