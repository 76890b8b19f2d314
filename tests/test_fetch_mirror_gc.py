"""``awrepro mirror`` and ``fetch --mirror`` with the upstream server down; ``gc`` and ``cache``."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.gitfixtures import (
    GitDaemon,
    checkout_dirs,
    demo_registry,
    fetch_error,
    git,
    git_code,
    head,
    mirror_of,
    printed_path,
    state,
    write_registry,
)

FILES = {"hello.py": "print('hi')\n"}


def two_papers(demo_url: str, demo_pin: str, other_url: str, other_pin: str) -> str:
    return demo_registry(git_code(demo_url, demo_pin)) + f'''
[papers.other]
title = "Other: Another Paper"
venue = "Tests"
year = 2023
section = "Tests"

[papers.other.impl.main.code]
{git_code(other_url, other_pin)}

[papers.other.impl.main.smoke]
command = "true"
'''


@pytest.fixture
def awrepro(cli, tmp_path: Path):
    """``awrepro --registry REG --cache-dir CACHE ARGS...``: a registry text and a cache folder name."""

    def run(registry_text: str, *args: str, cache: str = "cache"):
        registry = write_registry(tmp_path / "reg", registry_text)
        return cli("--registry", str(registry), "--cache-dir", str(tmp_path / cache), *args)

    return run


def test_fetch_from_an_offline_mirror_with_the_server_down(awrepro, repos, git_daemon, tmp_path, monkeypatch):
    pin = repos.create("demo", FILES)
    repos.commit("demo", {"hello.py": "print('newer')\n"})
    other_pin = repos.create("other", {"other.py": "print('other')\n"})
    registry = two_papers(git_daemon.url("demo"), pin, git_daemon.url("other"), other_pin)
    folder = tmp_path / "mirror"

    made = awrepro(registry, "mirror", str(folder), "demo")

    assert made.code == 0, made.out + made.err
    assert [line.split("  ")[0] for line in made.out.splitlines()] == ["demo"]
    git_daemon.stop()

    offline = awrepro(registry, "fetch", "--mirror", str(folder), "demo", cache="fresh-cache")

    assert offline.code == 0, offline.out + offline.err
    assert state(offline.out) == "fetched"
    tree = printed_path(offline.out)
    assert tree.is_relative_to(tmp_path / "fresh-cache")
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"

    missing = awrepro(registry, "fetch", "--mirror", str(folder), "other", cache="fresh-cache")

    assert missing.code == 1
    message = fetch_error(missing.out, "other")
    assert message.startswith(f"{git_daemon.url('other')} is not in the mirror {folder} (expected ")
    assert message.endswith(f"run `awrepro mirror {folder}` where the network is reachable")

    monkeypatch.setenv("AWREPRO_MIRROR", str(folder))
    from_env = awrepro(registry, "fetch", "demo", cache="third-cache")
    assert from_env.code == 0, from_env.out + from_env.err
    assert head(printed_path(from_env.out)) == pin
    assert printed_path(from_env.out).is_relative_to(tmp_path / "third-cache")


def test_a_relative_mirror_folder(awrepro, cli, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    assert awrepro(registry, "mirror", "mirror", "demo").code == 0  # run from tmp_path/work
    git_daemon.stop()

    result = cli("--registry", str(tmp_path / "reg" / "registry.toml"), "--cache-dir", str(tmp_path / "fresh"),
                 "fetch", "--mirror", "mirror", "demo", cwd=tmp_path / "work")

    assert result.code == 0, result.out + result.err
    assert head(printed_path(result.out)) == pin


def test_the_mirror_folder_can_be_served_by_git_daemon(awrepro, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    folder = tmp_path / "mirror"
    assert awrepro(demo_registry(git_code(git_daemon.url("demo"), pin)), "mirror", str(folder), "demo").code == 0
    git_daemon.stop()

    cluster = GitDaemon(folder)
    cluster.start()
    try:
        [stored] = folder.rglob("demo.git")
        served = stored.relative_to(folder).with_suffix("")
        result = awrepro(demo_registry(git_code(cluster.url(str(served)), pin)), "fetch", "demo", cache="fresh")
    finally:
        cluster.stop()

    assert result.code == 0, result.out + result.err
    assert head(printed_path(result.out)) == pin


def test_gc_lists_then_removes_what_the_registry_no_longer_uses(awrepro, repos, git_daemon, tmp_path):
    old = repos.create("demo", FILES)
    new = repos.commit("demo", {"hello.py": "print('new')\n"})
    other_pin = repos.create("other", {"other.py": "print('other')\n"})
    cache = tmp_path / "cache"
    before = two_papers(git_daemon.url("demo"), old, git_daemon.url("other"), other_pin)
    assert awrepro(before, "fetch", "--all").code == 0
    old_checkout = checkout_dirs(cache)
    other_mirror = mirror_of(cache, "other")
    demo_mirror = mirror_of(cache, "demo")
    after = demo_registry(git_code(git_daemon.url("demo"), new))  # demo moved on; other is gone
    kept = printed_path(awrepro(after, "fetch", "demo").out).parent
    unused = sorted({*old_checkout, other_mirror} - {kept})
    assert len(unused) == 3  # demo's old checkout, other's checkout and other's mirror

    dry = awrepro(after, "gc", "--dry-run")

    assert dry.code == 0, dry.err
    listed = sorted(Path(line.split()[-1]) for line in dry.out.splitlines() if line.startswith("would remove"))
    assert listed == unused
    assert all(path.exists() for path in unused)
    assert "3 unused items, would free" in dry.err

    done = awrepro(after, "gc")

    assert done.code == 0, done.err
    removed = sorted(Path(line.split()[-1]) for line in done.out.splitlines() if line.startswith("removed"))
    assert removed == unused
    assert not any(path.exists() for path in unused)
    assert kept.is_dir() and demo_mirror.is_dir()
    again = awrepro(after, "fetch", "demo")
    assert (again.code, state(again.out)) == (0, "cached")
    assert awrepro(after, "gc", "--dry-run").out.strip() == ""


def test_cache_prints_the_root_and_each_kind(awrepro, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    assert awrepro(registry, "fetch", "demo").code == 0

    result = awrepro(registry, "cache")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"cache: {tmp_path / 'cache'}"
    kinds = [line.split()[0] for line in lines[1:]]
    assert kinds == ["repos", "checkouts", "archives", "envs", "logs", "results.db", "total"]
    sizes = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert sizes["archives"] == ["0", "B"] and sizes["envs"] == ["0", "B"]
    assert sizes["repos"] != ["0", "B"] and sizes["checkouts"] != ["0", "B"]
    shutil.rmtree(tmp_path / "cache")
    empty = awrepro(registry, "cache")
    assert empty.code == 0 and empty.out.splitlines()[0] == f"cache: {tmp_path / 'cache'}"


def test_mirror_says_what_it_cannot_mirror_and_the_hints_name_commands_that_work(
        awrepro, repos, git_daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin)) + '''
[papers.nocode]
title = "Nocode: A Paper Without Code"
venue = "Tests"
year = 2023
section = "Tests"
no_code = "the authors published none"
'''
    folder = tmp_path / "mirror"
    named = awrepro(registry, "mirror", str(folder), "nocode")
    assert named.code == 2, named.out + named.err
    assert named.err == "error: nocode: cannot be mirrored: no code: the authors published none\n"
    assert named.out == ""  # and no "Use it offline" hint

    everything = awrepro(registry, "mirror", str(folder), "--all")
    assert everything.code == 0, everything.out + everything.err
    assert [line.split("  ")[0] for line in everything.out.splitlines()] == ["demo"]
    assert "nocode: not mirrored: no code: the authors published none" in everything.err
    assert f"Use it offline: awrepro fetch --mirror {folder} ..." in everything.err
    git_daemon.stop()

    offline = awrepro(registry, "fetch", "--mirror", str(folder), "demo", cache="fresh-cache")
    assert offline.code == 0, offline.out + offline.err
    hint = offline.err.splitlines()[-1].split(": ", 1)[1]
    assert hint == f"awrepro run demo --mirror {folder} -- python ..."
    # The hint works as printed (with a real command for the "python ..."), the server still down.
    witness = tmp_path / "ran"
    args = hint.split()[1:-1] + ["-c", f"import pathlib; pathlib.Path({str(witness)!r}).write_text('ran')"]
    ran = awrepro(registry, *args, cache="fresh-cache")
    assert ran.code == 0, ran.out + ran.err
    assert witness.read_text() == "ran"


def test_run_takes_its_options_after_the_id(awrepro, repos, git_daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("AWREPRO_TEST_SHOWN", "passed through")
    pin = repos.create("demo", FILES)
    witness = tmp_path / "seen"
    script = f"import os, pathlib; pathlib.Path({str(witness)!r}).write_text(os.environ.get('AWREPRO_TEST_SHOWN', 'absent'))"
    ran = awrepro(demo_registry(git_code(git_daemon.url("demo"), pin)), "run", "demo", "--pass-env",
                  "AWREPRO_TEST_SHOWN", "--", "python", "-c", script)
    assert ran.code == 0, ran.out + ran.err
    assert witness.read_text() == "passed through"


def _listed(out: str) -> list[Path]:
    return sorted(Path(line.split()[-1]) for line in out.splitlines() if line.startswith(("would remove", "removed")))


def test_gc_keeps_what_any_registry_that_used_the_cache_needs(cli, repos, git_daemon, tmp_path):
    demo_pin = repos.create("demo", FILES)
    other_pin = repos.create("other", {"other.py": "print('other')\n"})
    cache = tmp_path / "shared-cache"
    first = write_registry(tmp_path / "first", demo_registry(git_code(git_daemon.url("demo"), demo_pin)))
    second = write_registry(tmp_path / "second", demo_registry(git_code(git_daemon.url("other"), other_pin))
                            .replace("papers.demo", "papers.other"))
    for registry in (first, second):
        assert cli("--registry", str(registry), "--cache-dir", str(cache), "fetch", "--all").code == 0
    first_items = sorted([mirror_of(cache, "demo"), *(p for p in checkout_dirs(cache) if "demo" in p.name)])
    assert len(first_items) == 2

    shared = cli("--registry", str(second), "--cache-dir", str(cache), "gc", "--dry-run")
    assert shared.code == 0, shared.err
    assert _listed(shared.out) == [] and "0 unused items" in shared.err
    narrowed = cli("--registry", str(second), "--cache-dir", str(cache), "gc", "--dry-run", "--only-this-registry")
    assert _listed(narrowed.out) == first_items
    assert all(path.exists() for path in first_items)

    first.unlink()  # the first registry is gone: what only it needed can go, and it is forgotten
    done = cli("--registry", str(second), "--cache-dir", str(cache), "gc")
    assert done.code == 0, done.err
    assert _listed(done.out) == first_items and not any(path.exists() for path in first_items)
    assert f"forgetting {first}: the registry file is gone" in done.err
    assert "forgetting" not in cli("--registry", str(second), "--cache-dir", str(cache), "gc").err
    assert mirror_of(cache, "other").is_dir()


def test_gc_stops_when_a_registry_that_used_the_cache_cannot_be_read(cli, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    cache = tmp_path / "cache"
    first = write_registry(tmp_path / "first", demo_registry(git_code(git_daemon.url("demo"), pin)))
    assert cli("--registry", str(first), "--cache-dir", str(cache), "fetch", "demo").code == 0
    first.write_text("format = 1\n[papers.demo\n")  # broken since
    second = write_registry(tmp_path / "second", demo_registry(git_code(git_daemon.url("demo"), pin)))
    done = cli("--registry", str(second), "--cache-dir", str(cache), "gc")
    assert done.code == 2 and done.out == ""
    assert done.err.startswith(f"error: {first} used this cache and cannot be read (")
    assert done.err.splitlines()[-1] == ("Fix that registry, or run gc --only-this-registry to keep only what "
                                         "this one needs.")


def test_gc_counts_hard_links_once_removes_killed_fetch_leftovers_and_old_logs(awrepro, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    assert awrepro(registry, "fetch", "demo").code == 0
    cache = tmp_path / "cache"
    # Two environments no entry uses, sharing one 4 MiB file by hard links (as uv makes them).
    envs = [cache / "envs" / name for name in ("0000aaaa", "0000bbbb")]
    for env in envs:
        (env / "lib").mkdir(parents=True)
    (envs[0] / "lib" / "big.so").write_bytes(os.urandom(4 * 1024 * 1024))
    os.link(envs[0] / "lib" / "big.so", envs[1] / "lib" / "big.so")
    # What a killed fetch leaves in the mirror gc keeps: a quarantine folder, a half-written pack, a loose object.
    mirror = mirror_of(cache, "demo")
    leftovers = [mirror / "objects" / "incoming-Ab12Cd", mirror / "objects" / "pack" / "tmp_pack_Xy34Zw",
                 mirror / "objects" / "ab" / "tmp_obj_Qr56St"]
    leftovers[0].mkdir()
    (leftovers[0] / "pack").mkdir()
    for leftover in leftovers[1:]:
        leftover.parent.mkdir(exist_ok=True)
        leftover.write_bytes(b"half an object")
    # Run logs: one of 40 days ago, one of today.
    old_log, new_log = cache / "logs" / "20260101-000000-check-1-1", cache / "logs" / "20261201-000000-check-2-1"
    for log in (old_log, new_log):
        log.mkdir(parents=True)
        (log / "smoke.log").write_text("output\n")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old_log, (forty_days_ago, forty_days_ago))

    dry = awrepro(registry, "gc", "--dry-run")
    assert dry.code == 0, dry.err
    assert _listed(dry.out) == sorted([*envs, *leftovers, old_log])
    sizes = {Path(line.split()[-1]): line.split()[2:4] for line in dry.out.splitlines()}
    assert sizes[envs[0]][1] == "MiB" and float(sizes[envs[0]][0]) >= 4.0
    assert sizes[envs[1]][1] in ("KiB", "B")  # the shared file counted once, with the first
    freed = dry.err.split("would free ")[1].split()
    assert freed[1] == "MiB" and 4.0 <= float(freed[0]) < 5.0  # 4 MiB, not 8

    done = awrepro(registry, "gc")
    assert done.code == 0, done.err
    assert not any(path.exists() for path in [*envs, *leftovers, old_log])
    assert new_log.is_dir() and mirror.is_dir()
    git("fsck", "--no-progress", cwd=mirror)  # the mirror is whole without them
    # A limit of its own for the logs.
    every_log = _listed(awrepro(registry, "gc", "--dry-run", "--log-days", "0").out)
    assert new_log in every_log and all(path.parent == cache / "logs" for path in every_log)
