"""Sparse entries: a blobless (partial) fetch, then only the blobs of the entry's folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.gitfixtures import GitDaemon, demo_registry, git_out, printed_path, write_registry

FILES = {
    "setup.py": "# top level\n",
    "pkg/__init__.py": "VALUE = 1\n",
    "pkg/models/net.py": "NET = 'net'\n",
    "pkg/testdata/huge.bin": "x" * 1000,
    "examples/README": "examples\n",
    "examples/linformer/model.py": "LINFORMER = 1\n",
    "docs/index.md": "docs\n",
}


@pytest.fixture
def filtering_daemon(repos):
    """A daemon that serves filtered fetches and blobs by id, as GitHub does."""
    daemon = GitDaemon(repos.bare, config=("uploadpack.allowFilter=true", "uploadpack.allowAnySHA1InWant=true"))
    daemon.start()
    yield daemon
    daemon.stop()


def _fetch(cli, tmp_path: Path, cache: Path, code: str, *args: str):
    registry = write_registry(tmp_path / "reg", demo_registry(code))
    return cli("--registry", str(registry), "--cache-dir", str(cache), "fetch", "demo", *args)


def _missing_blobs(repo: Path, commit: str) -> int:
    listing = git_out("rev-list", "--objects", "--missing=print", commit, cwd=repo)
    return sum(1 for line in listing.splitlines() if line.startswith("?"))


def test_a_sparse_entry_fetches_only_the_blobs_of_its_folders(cli, repos, filtering_daemon, tmp_path, cache_dir):
    pin = repos.create("mono", FILES)
    code = (f'git = "{filtering_daemon.url("mono")}"\ncommit = "{pin}"\n'
            'subdir = "examples/linformer"\nsparse = ["pkg", "!pkg/testdata"]')
    result = _fetch(cli, tmp_path, cache_dir, code)
    assert result.code == 0, result.out + result.err
    root = printed_path(result.out)
    tree = root.parent.parent
    assert (root / "model.py").read_text() == "LINFORMER = 1\n"
    assert (tree / "pkg" / "models" / "net.py").is_file()
    assert (tree / "setup.py").is_file()  # top-level files come along
    assert not (tree / "pkg" / "testdata").exists()
    assert not (tree / "docs").exists()
    mirror = next((cache_dir / "repos").rglob("mono.git"))
    assert _missing_blobs(mirror, pin) == 2  # docs/index.md and pkg/testdata/huge.bin never came
    # A working copy of the user's own is partial too, with the same folders.
    copy = tmp_path / "copy"
    again = _fetch(cli, tmp_path, cache_dir, code, "--dest", str(copy))
    assert again.code == 0, again.out + again.err
    assert (copy / "examples" / "linformer" / "model.py").is_file()
    assert not (copy / "docs").exists() and not (copy / "pkg" / "testdata").exists()
    assert git_out("remote", "get-url", "origin", cwd=copy) == filtering_daemon.url("mono")


def test_a_sparse_entry_works_when_the_server_lacks_blobs_outside_it(cli, repos, filtering_daemon, tmp_path,
                                                                      cache_dir):
    """Like the snapshot of trax that lacks its large test data: leaving that folder out is enough."""
    pin = repos.create("mono", FILES)
    bare = repos.bare / "mono.git"
    huge = git_out("rev-parse", f"{pin}:pkg/testdata/huge.bin", cwd=bare)
    # Repack everything but that blob: the server can no longer send it.
    git_out("repack", "-a", "-d", cwd=bare)
    pack = next((bare / "objects" / "pack").glob("*.pack"))
    objects = git_out("rev-list", "--objects", "--all", cwd=bare).splitlines()
    keep = "\n".join(line.split()[0] for line in objects if not line.startswith(huge)) + "\n"
    subprocess.run(["git", "pack-objects", "-q", str(bare / "objects" / "pack" / "pack")], input=keep.encode(),
                   cwd=bare, check=True, capture_output=True)
    pack.unlink()
    pack.with_suffix(".idx").unlink()
    code = f'git = "{filtering_daemon.url("mono")}"\ncommit = "{pin}"\nsparse = ["pkg", "!pkg/testdata"]'
    result = _fetch(cli, tmp_path, cache_dir, code)
    assert result.code == 0, result.out + result.err
    assert (printed_path(result.out) / "pkg" / "models" / "net.py").is_file()


def test_a_subdir_that_does_not_exist_is_a_fetch_error(cli, repos, git_daemon, tmp_path, cache_dir):
    pin = repos.create("demo", {"a.py": "A = 1\n"})
    code = f'git = "{git_daemon.url("demo")}"\ncommit = "{pin}"\nsubdir = "nowhere"'
    result = _fetch(cli, tmp_path, cache_dir, code)
    assert result.code == 1
    assert f"demo  fetch-error  subdir nowhere does not exist in {git_daemon.url('demo')} at {pin[:12]}" in result.out


def test_gc_refuses_while_another_command_uses_the_cache(cli, repos, git_daemon, tmp_path, cache_dir):
    from awrepro import locks

    pin = repos.create("demo", {"a.py": "A = 1\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(f'git = "{git_daemon.url("demo")}"\ncommit = "{pin}"'))
    with locks.shared(cache_dir / "in-use.lock"):  # as a running fetch or check holds it
        busy = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "gc")
        dry = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "gc", "--dry-run")
    assert busy.code == 2
    assert busy.err == "error: another awrepro command is using the cache; run gc when it has finished\n"
    assert dry.code == 0
    free = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "gc")
    assert free.code == 0
