"""``awrepro fetch`` as separate processes: two at once on one entry, and runs killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.gitfixtures import (
    GitDaemon,
    SlowProxy,
    checkout_dirs,
    demo_registry,
    fetch_error,
    git_code,
    has_object,
    head,
    mirror_of,
    printed_path,
    processes_in,
    state,
    tmp_leftovers,
    write_registry,
)
from tests.processes import wait_until


@pytest.fixture
def logged_daemon(repos, tmp_path: Path) -> Iterator[GitDaemon]:
    """A git daemon that logs every request, so tests can count fetches."""
    daemon = GitDaemon(repos.bare, log=tmp_path / "daemon.log")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def proxy(logged_daemon: GitDaemon) -> Iterator[SlowProxy]:
    slow = SlowProxy(logged_daemon.port)
    try:
        yield slow
    finally:
        slow.close()


@pytest.fixture
def awrepro() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts ``python -m awrepro`` in a process of its own; any still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(registry: Path, cache: Path, *args: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "awrepro", "--registry", str(registry), "--cache-dir", str(cache), *args]
        started.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         env=dict(os.environ)))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def settle(cache: Path) -> None:
    """Wait until no process (an orphaned git of a killed run) works inside the cache any more."""
    assert wait_until(lambda: not processes_in(cache)), processes_in(cache)


def test_two_processes_fetching_one_entry_at_once_share_one_fetch(
        awrepro, repos, proxy, logged_daemon, tmp_path, cache_dir):
    pin = repos.create("demo", {"hello.py": "print('hi')\n", "data.bin": os.urandom(256 * 1024)})
    proxy.delay = 0.05  # about a second of transfer: the two runs overlap for sure
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(proxy.url("demo"), pin)))

    runs = [awrepro(registry, cache_dir, "fetch", "demo") for _ in range(2)]
    results = [run.communicate(timeout=60) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], results
    outs = [out for out, _ in results]
    assert printed_path(outs[0]) == printed_path(outs[1])
    assert sorted(state(out) for out in outs) == ["cached", "fetched"]
    assert head(printed_path(outs[0])) == pin
    assert logged_daemon.requests("demo") == 1  # the mirror was fetched once
    assert len(checkout_dirs(cache_dir)) == 1
    assert tmp_leftovers(cache_dir / "checkouts") == [] and tmp_leftovers(cache_dir / "repos") == []


def test_a_run_killed_mid_transfer_leaves_nothing_trusted(awrepro, repos, proxy, tmp_path, cache_dir):
    blob = os.urandom(2 * 1024 * 1024)  # incompressible: about two seconds through the slow proxy
    pin = repos.create("demo", {"hello.py": "print('hi')\n", "data.bin": blob})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(proxy.url("demo"), pin)))
    run = awrepro(registry, cache_dir, "fetch", "demo")

    assert wait_until(lambda: proxy.sent > 256 * 1024 or run.poll() is not None)
    assert run.poll() is None, run.communicate()  # killed mid-way, not after
    kill(run)
    proxy.drop()  # the network goes too (git runs in a session of its own: it outlives a SIGKILLed awrepro)
    settle(cache_dir)

    assert checkout_dirs(cache_dir) == []
    # The commit object itself may be there (unpack-objects writes as it reads), its blobs not yet.

    again = awrepro(registry, cache_dir, "fetch", "demo")
    out, err = again.communicate(timeout=60)

    assert again.returncode == 0, err
    tree = printed_path(out)
    assert head(tree) == pin
    assert (tree / "data.bin").read_bytes() == blob
    assert tmp_leftovers(cache_dir / "checkouts") == []
    assert tmp_leftovers(cache_dir / "repos") == []


def test_a_run_killed_with_its_git_mid_transfer_does_not_block_the_next(awrepro, repos, proxy, tmp_path, cache_dir):
    """Everything killed at once (OOM killer, a reboot): git's own lock files stay behind."""
    blob = os.urandom(2 * 1024 * 1024)
    pin = repos.create("demo", {"hello.py": "print('hi')\n", "data.bin": blob})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(proxy.url("demo"), pin)))
    run = awrepro(registry, cache_dir, "fetch", "demo")
    assert wait_until(lambda: proxy.sent > 256 * 1024 or run.poll() is not None)
    assert run.poll() is None, run.communicate()

    kill(run)
    for pid in processes_in(cache_dir):  # git runs in a session of its own: kill it too, by its pid
        os.kill(pid, signal.SIGKILL)
    settle(cache_dir)
    proxy.drop()

    again = awrepro(registry, cache_dir, "fetch", "demo")
    out, err = again.communicate(timeout=60)

    assert again.returncode == 0, out + err
    tree = printed_path(out)
    assert head(tree) == pin
    assert (tree / "data.bin").read_bytes() == blob


def test_a_run_killed_while_building_the_checkout(
        awrepro, repos, git_daemon, tmp_path, cache_dir, isolated_environment):
    # A smudge filter from the user's git configuration makes the checkout take a second.
    gitconfig = isolated_environment / ".gitconfig"
    gitconfig.write_text('[filter "slow"]\n\tsmudge = "sleep 1; cat"\n')
    pin = repos.create("demo", {"hello.py": "print('hi')\n", ".gitattributes": "hello.py filter=slow\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(git_daemon.url("demo"), pin)))
    run = awrepro(registry, cache_dir, "fetch", "demo")
    checkouts = cache_dir / "checkouts"

    building = lambda: any(checkouts.glob(".tmp-*/demo/.git/objects/info/alternates"))  # noqa: E731
    assert wait_until(lambda: building() or run.poll() is not None)
    assert run.poll() is None, run.communicate()
    kill(run)
    settle(cache_dir)  # the orphaned checkout finishes into the temporary folder, which nobody renames
    assert tmp_leftovers(checkouts) and checkout_dirs(cache_dir) == tmp_leftovers(checkouts)
    gitconfig.unlink()

    again = awrepro(registry, cache_dir, "fetch", "demo")
    out, err = again.communicate(timeout=60)

    assert again.returncode == 0, err
    assert state(out) == "fetched"
    tree = printed_path(out)
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"
    assert tmp_leftovers(checkouts) == []


def test_a_leftover_of_a_killed_fetch_is_not_taken_for_a_force_pushed_commit(
        awrepro, repos, proxy, tmp_path, cache_dir, isolated_environment):
    (isolated_environment / ".gitconfig").write_text("[protocol]\n\tversion = 0\n")  # the fallback path
    base = repos.create("demo", {"hello.py": "print('hi')\n"})
    doomed = repos.commit("demo", {"data.bin": os.urandom(2 * 1024 * 1024)})
    url = proxy.url("demo")
    registry = write_registry(tmp_path / "reg", demo_registry(git_code(url, doomed)))
    run = awrepro(registry, cache_dir, "fetch", "demo")
    assert wait_until(lambda: proxy.sent > 256 * 1024 or run.poll() is not None)
    assert run.poll() is None, run.communicate()
    kill(run)
    proxy.drop()
    settle(cache_dir)
    mirror = mirror_of(cache_dir, "demo")
    assert has_object(mirror, doomed) and not has_object(mirror, f"{doomed}:data.bin")  # the commit, not its blob
    repos.force_back("demo", base)

    again = awrepro(registry, cache_dir, "fetch", "demo")
    out, err = again.communicate(timeout=60)

    assert again.returncode == 1, out + err
    assert fetch_error(out) == (f"commit {doomed[:12]} not found in {url}: check that it is typed right "
                                        "(the full id of a commit of this repository); if it is, it was force-pushed "
                                        "away or deleted upstream")
    assert checkout_dirs(cache_dir) == []


def test_building_a_checkout_leaves_a_patched_siblings_temporary_folder_alone(
        awrepro, repos, git_daemon, tmp_path, cache_dir, isolated_environment):
    (isolated_environment / ".gitconfig").write_text('[filter "slow"]\n\tsmudge = "sleep 1; cat"\n')
    pin = repos.create("demo", {"hello.py": "print('hi')\n", ".gitattributes": "hello.py filter=slow\n"})
    code = git_code(git_daemon.url("demo"), pin)
    (tmp_path / "reg").mkdir()
    (tmp_path / "reg" / "fix.patch").write_text(
        "--- a/hello.py\n+++ b/hello.py\n@@ -1 +1 @@\n-print('hi')\n+print('fixed')\n")
    registry = write_registry(tmp_path / "reg", demo_registry(code) + f'''
[papers.demo.impl.fixed.code]
{code}

[papers.demo.impl.fixed.env]
patches = ["fix.patch"]

[papers.demo.impl.fixed.smoke]
command = "true"
''')
    checkouts = cache_dir / "checkouts"
    fixed = awrepro(registry, cache_dir, "fetch", "demo/fixed")  # same commit, its own checkout (patched)
    building = lambda: any(checkouts.glob(".tmp-*/demo/.git/objects/info/alternates"))  # noqa: E731
    assert wait_until(lambda: building() or fixed.poll() is not None)
    assert fixed.poll() is None, fixed.communicate()

    plain = awrepro(registry, cache_dir, "fetch", "demo")  # starts while the patched one is being built
    results = [run.communicate(timeout=60) for run in (fixed, plain)]

    assert [fixed.returncode, plain.returncode] == [0, 0], results
    assert (printed_path(results[0][0], "demo/fixed") / "hello.py").read_text() == "print('fixed')\n"
    assert (printed_path(results[1][0]) / "hello.py").read_text() == "print('hi')\n"
    assert tmp_leftovers(checkouts) == []
