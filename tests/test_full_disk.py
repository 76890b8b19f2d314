"""A full disk while fetching is a fetch error naming the folder, never a crash: on a real small
filesystem (``tests/smalldisk.py``), through the real CLI. git's own message survives a log on the
same full disk, and the failed fetch's temporary objects do not keep the disk full."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.gitfixtures import HttpServer, demo_registry, fetch_error, git_code, mirror_of, write_registry
from tests.smalldisk import MiB, small_disk, used


def test_a_git_fetch_that_fills_the_disk_keeps_gits_message_and_removes_its_objects(
        cli, repos, git_daemon, cache_dir, tmp_path):
    pin = repos.create("demo", {"hello.py": "print('hi')\n", "weights.bin": os.urandom(3 * MiB)})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), pin)))
    with small_disk(cache_dir, 2 * MiB):
        done = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo")

        assert done.code == 1, done.out + done.err
        mirror = mirror_of(cache_dir, "demo")
        message = fetch_error(done.out)
        # git's own line, though its log is on the full disk too
        assert message.startswith(f"no space left on device in {mirror} (git fetch of {pin[:12]} failed: "), message
        assert message.endswith(": No space left on device)"), message
        assert sorted(p.name for p in mirror.rglob("tmp_*")) == []
        assert used(cache_dir) < MiB // 2  # the half-written object is gone: the disk has room again


@contextmanager
def served_archive(tmp_path: Path, size: int) -> Iterator[Path]:
    """A registry whose `demo` is a pinned tar of ``size`` random bytes, served over HTTP on 127.0.0.1."""
    www = tmp_path / "www"
    www.mkdir()
    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(size))
    with tarfile.open(www / "big.tar", "w") as tar:
        tar.add(noise, "big/noise.bin")
    sha = hashlib.sha256((www / "big.tar").read_bytes()).hexdigest()
    server = HttpServer(www)
    server.start()
    try:
        yield write_registry(tmp_path / "reg", demo_registry(f'archive = "{server.url("big.tar")}"\nsha256 = "{sha}"'))
    finally:
        server.stop()


def test_an_archive_download_into_a_full_cache_is_a_fetch_error_naming_the_folder(cli, cache_dir, tmp_path):
    with served_archive(tmp_path, 4 * MiB) as registry:
        report = tmp_path / "report.json"
        with small_disk(cache_dir, 2 * MiB):
            done = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "check", "demo",
                       "--json", str(report))

            assert done.code == 1, done.out + done.err
            (result,) = json.loads(report.read_text())["results"]
            assert (result["status"], result["failed_stage"]) == ("fetch-error", "fetch")
            assert result["note"] == f"no space left on device in {cache_dir / 'archives'}"
            assert [p.name for p in (cache_dir / "archives").iterdir() if p.is_dir()] == []


def fill(folder: Path) -> None:
    """Leave no byte free on ``folder``'s filesystem."""
    with (folder / "filler").open("wb") as out:
        try:
            while True:
                out.write(bytes(MiB))
                out.flush()
        except OSError:
            pass


def test_a_cache_full_before_the_run_is_named_by_fetch_and_check(cli, repos, git_daemon, cache_dir, tmp_path):
    pin = repos.create("demo", {"hello.py": "print('hi')\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), pin)))
    with small_disk(cache_dir, 1 * MiB):
        fill(cache_dir)
        fetched = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo")
        checked = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "check", "demo")

        assert fetched.code == 1, fetched.out + fetched.err
        assert fetch_error(fetched.out).startswith(f"no space left on device in {cache_dir / 'repos'}"), fetched.out
        assert list((cache_dir / "repos").rglob("*.git")) == []  # no half-made mirror
        assert checked.code == 2, checked.out + checked.err  # before any work: the history could not be kept
        assert checked.err.splitlines()[0] == (f"error: cannot write to the results database {cache_dir}/results.db: "
                                               f"no space left on device in {cache_dir}")


def test_a_killed_fetchs_temporary_objects_go_at_the_next_fetch_of_its_repository(cli, repos, git_daemon, tmp_path):
    first = repos.create("demo", {"hello.py": "print('hi')\n"})
    common = ("--cache-dir", str(tmp_path / "cache"), "fetch", "demo")
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), first)))
    assert cli("--registry", str(registry), *common).code == 0
    mirror = mirror_of(tmp_path / "cache", "demo")
    leftovers = [mirror / "objects" / "pack" / "tmp_pack_Xy34Zw", mirror / "objects" / "ab" / "tmp_obj_Qr56St"]
    for leftover in leftovers:  # what a fetch killed with SIGKILL leaves
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(os.urandom(64 * 1024))
    second = repos.commit("demo", {"hello.py": "print('hello')\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), second)))

    done = cli("--registry", str(registry), *common)

    assert done.code == 0, done.out + done.err
    assert [p for p in leftovers if p.exists()] == []


@pytest.mark.parametrize(("inodes", "status", "stage"), [(3, "fetch-error", "fetch"), (4, "setup-error", "setup")])
def test_a_stage_log_that_cannot_be_made_ends_the_entry_as_that_stages_error(
        cli, repos, git_daemon, cache_dir, tmp_path, inodes, status, stage):
    pin = repos.create("demo", {"hello.py": "print('hi')\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), pin)))
    report = tmp_path / "report.json"
    # The logs folder holds its root, the run's folder, the entry's folder, then one log per stage.
    with small_disk(cache_dir / "logs", MiB, inodes=inodes):
        done = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "check", "demo", "--json", str(report))

        assert done.code == 1, done.out + done.err
        (result,) = json.loads(report.read_text())["results"]
        (run,) = (cache_dir / "logs").iterdir()
        assert (result["status"], result["failed_stage"]) == (status, stage), result
        assert result["note"] == f"no space left on device in {run / 'demo--main'}"


def test_a_full_mirror_folder_is_the_entrys_error_naming_it(cli, repos, git_daemon, cache_dir, tmp_path):
    pin = repos.create("demo", {"hello.py": "print('hi')\n", "weights.bin": os.urandom(3 * MiB)})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), pin)))
    folder = tmp_path / "mirror"
    with small_disk(folder, 1 * MiB):
        done = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "mirror", str(folder), "demo")

        assert done.code == 1, done.out + done.err
        assert "Traceback" not in done.err
        (line,) = [line for line in done.err.splitlines() if "demo:" in line]
        assert f"demo: no space left on device in {folder}" in line, done.err


def test_fetch_dest_of_an_archive_on_a_full_disk_leaves_no_half_copy(cli, cache_dir, tmp_path):
    with served_archive(tmp_path, 3 * MiB) as registry:
        out = tmp_path / "out"
        with small_disk(out, 1 * MiB):
            done = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo",
                       "--dest", str(out / "copy"))

            assert done.code == 1, done.out + done.err
            assert fetch_error(done.out).startswith(f"no space left on device in {out}"), done.out
            assert list(out.iterdir()) == []  # neither DEST nor the copy made beside it
            assert used(out) < MiB // 4
