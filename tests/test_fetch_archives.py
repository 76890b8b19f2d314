"""``awrepro fetch`` of archive sources from a real HTTP server on 127.0.0.1: checksums, unpacking,
and archives whose members would land outside their folder."""

from __future__ import annotations

import hashlib
import shutil
import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitfixtures import HttpServer, demo_registry, fetch_error, printed_path, state, write_registry

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
