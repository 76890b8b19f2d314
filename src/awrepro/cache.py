"""The cache folder: where mirrors, checkouts, environments, logs and results live.

    <cache>/repos/      one bare mirror per repository URL
    <cache>/checkouts/  one checkout per (repository, commit)
    <cache>/archives/   downloaded archives and their unpacked trees, by sha256
    <cache>/envs/       one environment per hash of its spec
    <cache>/logs/       one folder per run, one log per entry and stage
    <cache>/results.db  SQLite history of every check
    <cache>/links.db    link results of ``awrepro links`` (good ones, for a day)
    <cache>/registries/ one file per registry that used this cache, holding its path (gc keeps what each needs)

A cache that cannot be written (a read-only mount) serves the commands that only read it; every
command that writes stops where it takes the cache's lock (``in_use``, ``exclusively``), before any work.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from awrepro.constants import ENV_CACHE_DIR


def resolve_root(explicit: Path | None, environ: Mapping[str, str]) -> Path:
    """``--cache-dir``, else ``$AWREPRO_CACHE_DIR``, else the platform's user cache folder."""
    if explicit is not None:
        return explicit.expanduser().absolute()
    if environ.get(ENV_CACHE_DIR):
        return Path(environ[ENV_CACHE_DIR]).expanduser().absolute()
    if sys.platform.startswith("linux"):
        # What platformdirs answers on Linux, without its import on every start-up.
        return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "awrepro"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("awrepro", appauthor=False))


_log_counter = itertools.count(1)


class Cache:
    """Paths inside one cache folder. Pass it around; never keep paths in globals."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(cls, explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Cache:
        return cls(resolve_root(explicit, environ))

    @property
    def repos(self) -> Path:
        return self.root / "repos"

    @property
    def checkouts(self) -> Path:
        return self.root / "checkouts"

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def results_db(self) -> Path:
        return self.root / "results.db"

    @property
    def links_db(self) -> Path:
        return self.root / "links.db"

    def writable(self) -> bool:
        return unwritable(self.root) is None

    def require_writable(self) -> None:
        """Stop a command that writes to the cache before any work when it cannot (exit 2, one line)."""
        require_writable(self.root, "the cache", f"set {ENV_CACHE_DIR} or --cache-dir to a writable folder")

    def in_use(self) -> AbstractContextManager[None]:
        """Held (shared) by every command that builds or reads cache entries, so gc never
        removes something a running command is building or using. Taking it is where every such
        command stops when the cache cannot be written: the lock file is its first write."""
        from awrepro import locks

        self.require_writable()
        return locks.shared(self.root / "in-use.lock")

    def exclusively(self) -> AbstractContextManager[bool]:
        """Whether the cache is ours alone (no other command holds ``in_use``), without waiting."""
        from awrepro import locks

        self.require_writable()
        return locks.exclusive_or_none(self.root / "in-use.lock")

    def new_log_folder(self, command: str) -> Path:
        """A folder under logs/ for one run of ``command``, unique even within one process.

        Not created here: a run that writes no log leaves no empty folder behind.
        """
        from datetime import datetime

        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return self.logs / f"{stamp}-{command}-{os.getpid()}-{next(_log_counter)}"

    @property
    def registries(self) -> Path:
        return self.root / "registries"

    def remember_registry(self, path: Path) -> None:
        """Record that the registry at ``path`` uses this cache (as pre-commit's store does), so that
        gc run under any registry keeps what this one needs while its file exists."""
        import hashlib

        path = path.absolute()
        record = self.registries / hashlib.sha256(os.fsencode(path)).hexdigest()[:20]
        if record.exists():
            return
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            temporary = record.with_name(f".{record.name}.{os.getpid()}.tmp")
            temporary.write_bytes(os.fsencode(path))
            os.replace(temporary, record)
        except OSError:
            pass  # best effort (a full disk): the command's own writes will say so

    def known_registries(self) -> dict[Path, Path]:
        """Each recorded registry's path, and the record that names it."""
        if not self.registries.is_dir():
            return {}
        found = {}
        for record in sorted(self.registries.iterdir()):
            if record.name.startswith("."):
                continue
            try:
                found[Path(os.fsdecode(record.read_bytes()))] = record
            except OSError:
                continue
        return found

    def __repr__(self) -> str:
        return f"<Cache {self.root}>"


def unwritable(folder: Path) -> int | None:
    """Why nothing can be made in ``folder`` (or, while it does not exist, in its nearest existing
    parent): EROFS, EACCES or ENOTDIR; None when something can. A read-only filesystem is told by its mount
    flags, so root (whom permission bits do not stop) learns it too."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return errno.ENOTDIR
    try:
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return errno.EROFS
    except OSError:
        return None  # cannot tell: the write itself will say
    return None if os.access(existing, os.W_OK | os.X_OK) else errno.EACCES


def require_writable(folder: Path, what: str, way_out: str) -> None:
    """Raise UsageError (one line: ``what`` ``folder``, why, ``way_out``) when ``folder`` cannot be written."""
    code = unwritable(folder)
    if code is not None:
        from awrepro.errors import UsageError

        state = "read-only" if code == errno.EROFS else "not writable"
        raise UsageError(f"{what} {folder} is {state} ({os.strerror(code)}); {way_out}")


def inodes(path: Path) -> dict[tuple[int, int], tuple[int, int]]:
    """Every file and folder under ``path`` (itself included) once: (device, inode) -> (bytes on disk,
    names it has: its hard links; 1 for a folder, whose link count counts its subfolders' "..")."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    paths = [path] if path.is_file() or path.is_symlink() else [path, *path.rglob("*")]
    for item in paths:
        try:
            info = item.lstat()
        except OSError:
            continue
        names = 1 if stat.S_ISDIR(info.st_mode) else info.st_nlink
        found.setdefault((info.st_dev, info.st_ino), (info.st_blocks * 512, names))
    return found


def disk_usage(path: Path) -> int:
    """Bytes on disk under ``path``, counting a hard-linked file once (uv links packages across envs)."""
    return sum(size for size, _ in inodes(path).values())


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover
