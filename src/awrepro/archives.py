"""Archive sources: downloaded with httpx (streamed, size-capped), checked by sha256, unpacked safely.

An archive is cached by its sha256 under ``<cache>/archives/SHA256/`` (``SHA256-DIGEST/`` when
the entry has patches): the file itself, and the unpacked tree. A member with an absolute path
or ``..``, a link that points outside, or a device file is refused before anything is written
where a later run would trust it; an archive that unpacks to more bytes or members than its
entry's caps allows stops there, and what it wrote is removed.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from awrepro import console, errors, locks
from awrepro.cache import Cache
from awrepro.errors import FetchError, UnsafeSourceError
from awrepro.model import ArchiveCode, Implementation
from awrepro.sources import Checkout, FetchOptions, checkout_key, read_patches
from awrepro.staging import MARKER, aside, apply_patches, replace_dir

MAX_BYTES = 2 * 1024**3
_CHUNK = 1024 * 1024


def ensure(cache: Cache, impl: Implementation, registry_root: Path, options: FetchOptions,
           log_path: Path | None = None) -> Checkout:
    code = impl.code
    assert isinstance(code, ArchiveCode)
    if not code.sha256:
        raise FetchError(f"{code.archive} is an unpinned archive (no sha256): awrepro will not trust it; "
                         "add sha256 to the registry once the file is known")
    patches = read_patches(impl, registry_root)
    patch_texts = [text for _, text in patches]
    final = folder(cache, code.sha256, patch_texts)
    tree = final / "tree"
    key = checkout_key(impl, patch_texts)
    if (final / MARKER).is_file():
        return Checkout(tree, root_in(tree, code), key, fetched=False)
    with errors.space_in(cache.archives, FetchError), locks.locked(cache.archives / f"{final.name}.lock"):
        if (final / MARKER).is_file():
            return Checkout(tree, root_in(tree, code), key, fetched=False)
        with aside(cache.archives, final.name) as temporary:
            download = temporary / _file_name(code.archive)
            _obtain(code.archive, code.sha256, download, options)
            unpack(download, temporary / "tree", code)
            apply_patches(root_in(temporary / "tree", code), patches, code, log_path, stage=False)
            (temporary / MARKER).write_text(json.dumps({"url": code.archive, "sha256": code.sha256}) + "\n")
            replace_dir(temporary, final)
    return Checkout(tree, root_in(tree, code), key, fetched=True)


def folder(cache: Cache, sha256: str, patch_texts: list[bytes]) -> Path:
    """``archives/SHA256``; with patches ``archives/SHA256-DIGEST``: the tree is patched in place."""
    if not patch_texts:
        return cache.archives / sha256
    digest = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in patch_texts)).hexdigest()
    return cache.archives / f"{sha256}-{digest[:8]}"


def root_in(tree: Path, code: ArchiveCode) -> Path:
    """Where commands run in an unpacked archive: its content root, plus the entry's subdir."""
    base = content_root(tree)
    if not code.subdir:
        return base
    from awrepro.paths import inside

    root = inside(tree, base, code.subdir, "code.subdir")
    if not root.is_dir():
        raise FetchError(f"subdir {code.subdir} does not exist in {code.archive}")
    return root


def content_root(tree: Path) -> Path:
    """The unpacked tree, or its only top-level folder: most archives wrap everything in one."""
    if tree.is_dir():
        children = list(tree.iterdir())
        if len(children) == 1 and children[0].is_dir():
            return children[0]
    return tree


def _file_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    return name or "archive"


def _obtain(url: str, sha256: str, target: Path, options: FetchOptions) -> None:
    if options.mirror_dir is not None:
        local = mirror_archive_path(options.mirror_dir, sha256, url)
        if not local.is_file():
            raise FetchError(f"{url} is not in the mirror {options.mirror_dir} (expected {local})")
        shutil.copyfile(local, target)
    else:
        download(url, target)
    digest = sha256_of(target)
    if digest != sha256:
        raise FetchError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}")


def mirror_archive_path(mirror_dir: Path, sha256: str, url: str) -> Path:
    return mirror_dir / "archives" / sha256 / _file_name(url)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, max_bytes: int = MAX_BYTES) -> None:
    """Stream ``url`` into ``target`` with a progress bar in a terminal; refuse more than ``max_bytes``."""
    from awrepro import http

    with http.client() as client, http.translate_errors(url):
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchError(f"downloading {url} failed: HTTP {response.status_code}")
            total = int(response.headers.get("content-length") or 0)
            if total > max_bytes:
                raise FetchError(f"{url} is {total} bytes, over the {max_bytes}-byte limit")
            with target.open("wb") as out, console.download_progress(url, total) as advance:
                received = 0
                for chunk in response.iter_bytes(_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise FetchError(f"{url} sent more than the {max_bytes}-byte limit")
                    out.write(chunk)
                    advance(len(chunk))


# What an archive may unpack to unless its entry raises it (code.max_unpacked_mib, code.max_members):
# twice the download cap's worth of bytes (source compresses 3-5x; a code archive of more is
# rare and says so in the registry), and twice the files of a Linux kernel tree. Either bound
# still leaves a CI runner's disk usable when a bomb hits it.
DEFAULT_MAX_UNPACKED_MIB = 2 * MAX_BYTES // 1024**2  # 4096: 4 GiB
DEFAULT_MAX_MEMBERS = 200_000


class _Budget:
    """Bytes written and members made so far while unpacking, against the entry's caps.

    Counts what is written, never what a header declares (a zip's sizes can lie), and stops
    before the write that would pass the cap."""

    def __init__(self, code: ArchiveCode) -> None:
        self.code = code
        self.mib = code.max_unpacked_mib or DEFAULT_MAX_UNPACKED_MIB
        self.max_bytes = self.mib * 1024**2
        self.max_members = code.max_members or DEFAULT_MAX_MEMBERS
        self.written = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.max_members:
            self._refuse(f"more than {self.max_members:,} members", "max_members", f"{DEFAULT_MAX_MEMBERS:,}")

    def write(self, source: IO[bytes], target: Path, mode: int) -> None:
        """Copy ``source`` into a new file ``target`` (a link already there is replaced, never followed)."""
        if target.is_symlink() or target.is_file():
            target.unlink()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                if self.written + len(chunk) > self.max_bytes:
                    self._refuse(f"more than {self.mib:,} MiB", "max_unpacked_mib", f"{DEFAULT_MAX_UNPACKED_MIB:,}")
                self.written += len(chunk)
                out.write(chunk)

    def _refuse(self, what: str, key: str, default: str) -> None:
        raise FetchError(f"archive {self.code.archive} unpacks to {what} (code.{key} = "
                         f"{getattr(self.code, key) or default}): unpacking stopped and its files were removed; "
                         f"if the archive really is that big, raise {key} in this entry's code table")


def unpack(archive: Path, dest: Path, code: ArchiveCode) -> None:
    """Unpack a tar or zip archive into ``dest`` within ``code``'s caps, refusing any member that
    would land outside it. The caller removes ``dest`` when this raises."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(code)
    try:
        if zipfile.is_zipfile(archive):
            _unzip(archive, dest, budget)
        else:
            _untar(archive, dest, budget)
    except tarfile.FilterError as exc:
        raise UnsafeSourceError(f"refusing archive {archive.name}: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise FetchError(f"cannot unpack {archive.name}: {exc}") from None
    except OSError as exc:
        if errors.disk_full(exc):
            raise  # the fetch says which folder is full
        raise FetchError(f"cannot unpack {archive.name}: {exc}") from None  # a damaged stream, a member over a file


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    """Member by member as the stream yields them: a bomb is never decompressed just to be listed."""
    with tarfile.open(archive) as tar:
        for member in tar:
            budget.member()
            _check_tar_member(member, dest)
            safe = tarfile.data_filter(member, str(dest))  # also sees links already unpacked
            target = dest / safe.name
            if safe.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif safe.isreg():
                source = tar.extractfile(safe)
                assert source is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                budget.write(source, target, 0o755 if (safe.mode or 0) & 0o100 else 0o644)
            else:  # links: no data of their own
                tar.extract(safe, dest, filter="data")


def _check_tar_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = member.name
    if name.startswith("/") or ".." in Path(name).parts:
        raise UnsafeSourceError(f"refusing archive member {name!r}: it would be written outside the folder")
    if member.issym() or member.islnk():
        base = (dest / name).parent if member.issym() else dest
        target = (base / member.linkname).resolve()
        if member.linkname.startswith("/") or not target.is_relative_to(dest.resolve()):
            kind = "symlink" if member.issym() else "hard link"
            raise UnsafeSourceError(f"refusing archive member {name!r}: {kind} to {member.linkname!r} points outside the folder")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeSourceError(f"refusing archive member {name!r}: special files are not unpacked")


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        for info in members:
            name = info.filename
            if name.startswith(("/", "\\")) or ".." in Path(name).parts:
                raise UnsafeSourceError(f"refusing archive member {name!r}: it would be written outside the folder")
        for info in members:
            budget.member()
            target = dest / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                source = zipped.open(info)
            except (NotImplementedError, RuntimeError) as exc:  # a compression zipfile lacks; an encrypted member
                raise FetchError(f"cannot unpack {archive.name}: member {info.filename!r}: {exc}") from None
            with source:
                budget.write(source, target, 0o644)
