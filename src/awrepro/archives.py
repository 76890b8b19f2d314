"""Archive sources: downloaded with httpx (streamed, size-capped), checked by sha256, unpacked safely.

An archive is cached by its sha256 under ``<cache>/archives/SHA256/`` (``SHA256-DIGEST/`` when
the entry has patches): the file itself, and the unpacked tree. A member with an absolute path
or ``..``, a link that points outside, or a device file is refused before anything is written
where a later run would trust it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

from awrepro import console, locks
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
    with locks.locked(cache.archives / f"{final.name}.lock"):
        if (final / MARKER).is_file():
            return Checkout(tree, root_in(tree, code), key, fetched=False)
        with aside(cache.archives, final.name) as temporary:
            download = temporary / _file_name(code.archive)
            _obtain(code.archive, code.sha256, download, options)
            unpack(download, temporary / "tree")
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

    root = inside(tree, base, code.subdir, "subdir")
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


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a tar or zip archive into ``dest``, refusing any member that would land outside it."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        _unzip(archive, dest)
        return
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                _check_tar_member(member, dest)
            tar.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise UnsafeSourceError(f"refusing archive {archive.name}: {exc}") from None
    except tarfile.TarError as exc:
        raise FetchError(f"cannot unpack {archive.name}: {exc}") from None


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


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if name.startswith(("/", "\\")) or ".." in Path(name).parts:
                raise UnsafeSourceError(f"refusing archive member {name!r}: it would be written outside the folder")
        zipped.extractall(dest)
