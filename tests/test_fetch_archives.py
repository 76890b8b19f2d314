"""``awrepro fetch`` of archive sources from a real HTTP server on 127.0.0.1: checksums, unpacking,
and archives whose members would land outside their folder."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitfixtures import HttpServer, demo_registry, fetch_error, printed_path, state, write_registry
from tests.smalldisk import MiB, small_disk, used

MARKER = "awrepro.json"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[HttpServer]:
    folder = tmp_path / "www"
    folder.mkdir()
    server = HttpServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fetch(cli, tmp_path: Path, cache_dir: Path):
    def run(registry_text: str, *args: str):
        registry = write_registry(tmp_path / "reg", registry_text)
        return cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", *args)

    return run


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    """Write a .tar.gz of ``members`` (data for files, None for links and folders); return its sha256."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_member(name: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, text.encode()


def dir_member(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def symlink_member(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def archive_code(url: str, sha256: str | None) -> str:
    return f'archive = "{url}"' + (f'\nsha256 = "{sha256}"' if sha256 else "")


def trusted_archives(cache: Path) -> list[Path]:
    folder = cache / "archives"
    return sorted(p for p in folder.iterdir() if (p / MARKER).exists()) if folder.exists() else []


def leftovers(cache: Path) -> list[Path]:
    folder = cache / "archives"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def suspects(root: Path) -> list[Path]:
    """Every file a malicious member could have written: anything named like one."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if "evil" in p.name or p.name in ("x", "up", "passwd"))


PROJECT = [dir_member("proj-1.0"), file_member("proj-1.0/hello.py", "print('hi')\n"),
           dir_member("proj-1.0/pkg"), file_member("proj-1.0/pkg/mod.py", "x = 1\n"),
           symlink_member("proj-1.0/link.py", "hello.py")]


def test_an_archive_with_the_right_checksum_is_fetched_and_unpacked(fetch, served, cache_dir):
    sha = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    registry = demo_registry(archive_code(served.url("proj-1.0.tar.gz"), sha))

    first = fetch(registry, "demo")

    assert first.code == 0, first.out + first.err
    assert state(first.out) == "fetched"
    root = printed_path(first.out)
    assert root == cache_dir / "archives" / sha / "tree" / "proj-1.0"  # the one top-level folder
    assert (root / "hello.py").read_text() == "print('hi')\n"
    assert (root / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert (root / "link.py").is_symlink() and (root / "link.py").read_text() == "print('hi')\n"
    assert trusted_archives(cache_dir) == [cache_dir / "archives" / sha]

    (served.folder / "proj-1.0.tar.gz").unlink()  # a cached archive is never downloaded again
    second = fetch(registry, "demo")
    assert (second.code, state(second.out), printed_path(second.out)) == (0, "cached", root)


def test_a_zip_archive_is_unpacked_too(fetch, served):
    path = served.folder / "proj.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("proj/hello.py", "print('zip')\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    result = fetch(demo_registry(archive_code(served.url("proj.zip"), sha)), "demo")

    assert result.code == 0, result.out + result.err
    assert (printed_path(result.out) / "hello.py").read_text() == "print('zip')\n"


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(fetch, served, cache_dir):
    actual = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    claimed = "0" * 64
    url = served.url("proj-1.0.tar.gz")

    result = fetch(demo_registry(archive_code(url, claimed)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == f"checksum mismatch for {url}: expected sha256 {claimed}, got {actual}"
    assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []


def test_a_missing_archive_is_a_one_line_http_error(fetch, served, cache_dir):
    url = served.url("nothing-here.tar.gz")

    result = fetch(demo_registry(archive_code(url, "1" * 64)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == f"downloading {url} failed: HTTP 404"
    assert leftovers(cache_dir) == []


@pytest.mark.parametrize(("members", "named", "reason"), [
    ([file_member("proj/ok.py", "x\n"), file_member("../evil", "pwned\n")],
     "../evil", "it would be written outside the folder"),
    ([file_member("proj/ok.py", "x\n"), file_member("proj/../../evil", "pwned\n")],
     "proj/../../evil", "it would be written outside the folder"),
    ([file_member("/tmp/evil-absolute", "pwned\n")], "/tmp/evil-absolute", "it would be written outside the folder"),
    ([symlink_member("proj/passwd", "/etc/passwd")],
     "proj/passwd", "symlink to '/etc/passwd' points outside the folder"),
    ([symlink_member("proj/up", "../../x")], "proj/up", "symlink to '../../x' points outside the folder"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-absolute", "symlink-dotdot"])
def test_an_archive_with_a_member_outside_its_folder_is_refused(
        fetch, served, cache_dir, tmp_path, members, named, reason):
    sha = make_tar(served.folder / "evil.tar.gz", members)
    before = suspects(tmp_path)

    result = fetch(demo_registry(archive_code(served.url("evil.tar.gz"), sha)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == f"refusing archive member {named!r}: {reason}"
    assert suspects(tmp_path) == before == [Path("www/evil.tar.gz")]  # nothing written, inside the cache or out of it
    assert not Path("/tmp/evil-absolute").exists()
    assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []


def test_a_symlinked_folder_then_a_member_through_it_is_refused(fetch, served, cache_dir, tmp_path):
    # The link itself stays inside when checked alone; a member written through it would not.
    members = [symlink_member("proj/here", "."), symlink_member("proj/here/out", "../..")]
    sha = make_tar(served.folder / "chain.tar.gz", members)

    result = fetch(demo_registry(archive_code(served.url("chain.tar.gz"), sha)), "demo")

    assert result.code == 1
    assert fetch_error(result.out).startswith("refusing archive")
    assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []


def test_a_zip_with_a_member_outside_its_folder_is_refused(fetch, served, cache_dir, tmp_path):
    path = served.folder / "evil.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("proj/ok.py", "x\n")
        zipped.writestr("../evil", "pwned\n")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    result = fetch(demo_registry(archive_code(served.url("evil.zip"), sha)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == "refusing archive member '../evil': it would be written outside the folder"
    assert not (tmp_path / "evil").exists() and not (cache_dir / "evil").exists()
    assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []


def test_an_unpinned_archive_is_refused_without_downloading(fetch, served, cache_dir):
    make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    url = served.url("proj-1.0.tar.gz")

    result = fetch(demo_registry(archive_code(url, None)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == (f"{url} is an unpinned archive (no sha256): awrepro will not trust it; "
                                       "add sha256 to the registry once the file is known")
    assert not (cache_dir / "archives").exists()


def test_an_archive_from_an_offline_mirror_with_the_server_down(cli, served, tmp_path):
    sha = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    registry = write_registry(tmp_path / "reg", demo_registry(archive_code(served.url("proj-1.0.tar.gz"), sha)))
    folder = tmp_path / "mirror"
    made = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), "mirror", str(folder), "demo")
    assert made.code == 0, made.out + made.err
    served.stop()

    offline = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "fresh"),
                  "fetch", "--mirror", str(folder), "demo")
    online = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "third"), "fetch", "demo")

    assert offline.code == 0, offline.out + offline.err
    root = printed_path(offline.out)
    assert root.is_relative_to(tmp_path / "fresh")
    assert (root / "hello.py").read_text() == "print('hi')\n"
    assert online.code == 1
    message = fetch_error(online.out)
    assert message.startswith(f"network unreachable: cannot connect to {served.url('proj-1.0.tar.gz')}")
    assert message.endswith("; without this network, fetch from an offline mirror with --mirror DIR (made by "
                            "`awrepro mirror DIR` where it is reachable)")


def test_dest_of_an_archive_is_a_copy_of_its_tree(fetch, served, cache_dir, tmp_path):
    sha = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    dest = tmp_path / "mine"

    result = fetch(demo_registry(archive_code(served.url("proj-1.0.tar.gz"), sha)), "demo", "--dest", str(dest))

    assert result.code == 0, result.out + result.err
    assert printed_path(result.out) == dest
    shutil.rmtree(cache_dir)
    # The archive's wrapper folder is unwrapped, as in the cache: the printed path holds the code.
    assert (dest / "hello.py").read_text() == "print('hi')\n"
    assert (dest / "link.py").is_symlink()


FIX = "--- a/hello.py\n+++ b/hello.py\n@@ -1 +1 @@\n-print('hi')\n+print('patched')\n"


def test_a_patch_added_to_a_cached_archive_entry_is_applied(fetch, served, cache_dir, tmp_path):
    sha = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    code = archive_code(served.url("proj-1.0.tar.gz"), sha)
    plain = fetch(demo_registry(code), "demo")
    assert (printed_path(plain.out) / "hello.py").read_text() == "print('hi')\n"
    (tmp_path / "reg" / "fix.patch").write_text(FIX)

    patched = fetch(demo_registry(code, env='patches = ["fix.patch"]'), "demo")

    assert patched.code == 0, patched.out + patched.err
    assert (printed_path(patched.out) / "hello.py").read_text() == "print('patched')\n"
    assert (printed_path(plain.out) / "hello.py").read_text() == "print('hi')\n"  # the unpatched tree stays
    again = fetch(demo_registry(code), "demo")
    assert (state(again.out), printed_path(again.out)) == ("cached", printed_path(plain.out))


def test_gc_keeps_a_patched_archive_and_drops_the_unpatched_one(cli, fetch, served, cache_dir, tmp_path):
    sha = make_tar(served.folder / "proj-1.0.tar.gz", PROJECT)
    code = archive_code(served.url("proj-1.0.tar.gz"), sha)
    plain = printed_path(fetch(demo_registry(code), "demo").out)
    (tmp_path / "reg" / "fix.patch").write_text(FIX)
    patched = printed_path(fetch(demo_registry(code, env='patches = ["fix.patch"]'), "demo").out)

    done = cli("--registry", str(tmp_path / "reg" / "registry.toml"), "--cache-dir", str(cache_dir), "gc")

    assert done.code == 0, done.err
    assert [Path(line.split()[-1]) for line in done.out.splitlines()] == [cache_dir / "archives" / sha]
    assert not plain.exists()
    assert (patched / "hello.py").read_text() == "print('patched')\n"


# ---------------------------------------------------------------- archive bombs: caps checked while unpacking

def tar_gz_bomb(path: Path, size: int) -> None:
    """One member of ``size`` zeros in a few MB: the same gzip member of 1 MiB of zeros, repeated
    (a gzip stream may hold many members), after the tar header's and before the end's."""
    header = tarfile.TarInfo("bomb/zeros.bin")
    header.size, header.mode = size, 0o644
    zeros = gzip.compress(bytes(MiB), 9, mtime=0)
    with path.open("wb") as out:
        out.write(gzip.compress(header.tobuf(format=tarfile.GNU_FORMAT), mtime=0))
        for _ in range(size // MiB):
            out.write(zeros)
        out.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE), mtime=0))


def zip_bomb(path: Path, size: int) -> None:
    """A zip of one deflated member of ``size`` zeros, honest headers. After a full flush deflate
    starts afresh, so each MiB of zeros compresses to the same bytes: written once, repeated."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = squeeze.compress(bytes(MiB)) + squeeze.flush(zlib.Z_FULL_FLUSH)
    data = block * (size // MiB) + squeeze.flush()
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(bytes(MiB), crc)
    name = b"bomb/zeros.bin"
    sizes = struct.pack("<3L", crc, len(data), size)
    local = struct.pack("<4s5H", b"PK\x03\x04", 20, 0, 8, 0, 0x21) + sizes + struct.pack("<2H", len(name), 0)
    central = (struct.pack("<4s6H", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21) + sizes
               + struct.pack("<5H2L", len(name), 0, 0, 0, 0, 0o644 << 16, 0) + name)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(name) + len(data), 0)
    path.write_bytes(local + name + data + central + end)


CAP_MIB = 2
BOMBS = {"tar.gz": (tar_gz_bomb, 10 * 1024 * MiB), "zip": (zip_bomb, 256 * MiB)}  # 10 GiB; 128 times the cap


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_an_archive_bomb_stops_at_its_cap_and_leaves_nothing(fetch, served, cache_dir, kind):
    make, size = BOMBS[kind]
    bomb = served.folder / f"bomb.{kind}"
    make(bomb, size)
    sha = hashlib.sha256(bomb.read_bytes()).hexdigest()
    url = served.url(bomb.name)
    # The cache is a filesystem with room for the download, the cap and 1 MiB: an unpack that
    # wrote past its cap by more would find the disk full, and fail with another message.
    room = bomb.stat().st_size + (CAP_MIB + 1) * MiB
    with small_disk(cache_dir, room):
        before = used(cache_dir)

        result = fetch(demo_registry(archive_code(url, sha) + f"\nmax_unpacked_mib = {CAP_MIB}"), "demo")

        assert result.code == 1, result.out + result.err
        assert fetch_error(result.out) == (
            f"archive {url} unpacks to more than {CAP_MIB} MiB (code.max_unpacked_mib = {CAP_MIB}): unpacking stopped "
            "and its files were removed; if the archive really is that big, raise max_unpacked_mib in this entry's "
            "code table")
        assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []
        assert used(cache_dir) - before < 256 * 1024  # the download and the partial unpack are gone: logs and locks stay


def test_an_archive_of_too_many_members_is_refused(fetch, served, cache_dir):
    path = served.folder / "many.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        for number in range(300):
            zipped.writestr(f"many/{number}.txt", "")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    url = served.url("many.zip")

    result = fetch(demo_registry(archive_code(url, sha) + "\nmax_members = 100"), "demo")
    raised = fetch(demo_registry(archive_code(url, sha) + "\nmax_members = 300"), "demo")

    assert result.code == 1, result.out + result.err
    assert fetch_error(result.out) == (
        f"archive {url} unpacks to more than 100 members (code.max_members = 100): unpacking stopped and its files "
        "were removed; if the archive really is that big, raise max_members in this entry's code table")
    assert raised.code == 0, raised.out + raised.err
    assert len(list(printed_path(raised.out).iterdir())) == 300


@pytest.mark.parametrize("kind", ["encrypted", "unknown-compression"])
def test_a_zip_member_zipfile_cannot_read_is_a_fetch_error(fetch, served, cache_dir, kind):
    path = served.folder / f"{kind}.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("proj/ok.py", "x\n")
        member = zipfile.ZipInfo("proj/secret.py")
        zipped.writestr(member, "y\n")
    raw = bytearray(path.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the member's local and central headers, as a hostile tool writes them
        at = raw.rindex(header)
        if kind == "encrypted":
            flags = at + (6 if header == b"PK\x03\x04" else 8)
            raw[flags] |= 0x01
        else:
            method = at + (8 if header == b"PK\x03\x04" else 10)
            raw[method:method + 2] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    result = fetch(demo_registry(archive_code(served.url(path.name), sha)), "demo")

    assert result.code == 1, result.out + result.err
    message = fetch_error(result.out)
    assert message.startswith("cannot unpack ") and ": member 'proj/secret.py': " in message, message
    assert trusted_archives(cache_dir) == [] and leftovers(cache_dir) == []
