"""``awrepro fetch`` of git sources against a real ``git daemon`` on 127.0.0.1: pins, refs,
force-pushes, protocol v0, damaged checkouts, --dest, transports, patches, network faults."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gitfixtures import (
    checkout_dirs,
    demo_registry,
    fetch_error,
    git,
    git_code,
    git_out,
    has_object,
    head,
    mirror_of,
    printed_path,
    state,
    tmp_leftovers,
    write_registry,
)

FILES = {"hello.py": "print('hi')\n", "pkg/mod.py": "x = 1\n"}


@pytest.fixture
def fetch(cli, tmp_path: Path, cache_dir: Path):
    """``awrepro --registry REG --cache-dir CACHE fetch ARGS...`` for a registry text."""

    def run(registry_text: str, *args: str, cache: Path | None = None):
        registry = write_registry(tmp_path / "reg", registry_text)
        return cli("--registry", str(registry), "--cache-dir", str(cache or cache_dir), "fetch", *args)

    return run


def test_fetch_checks_out_the_pin_and_a_second_fetch_needs_no_network(fetch, repos, git_daemon):
    pin = repos.create("demo", FILES)
    repos.commit("demo", {"hello.py": "print('newer')\n"})  # the branch moved on; the pin did not
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))

    first = fetch(registry, "demo")

    assert first.code == 0, first.err
    assert state(first.out) == "fetched"
    tree = printed_path(first.out)
    assert tree.is_dir()
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"
    assert (tree / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert git_out("status", "--porcelain", cwd=tree) == ""

    git_daemon.stop()  # any network call would now fail with "connection refused"
    second = fetch(registry, "demo")

    assert second.code == 0, second.err
    assert state(second.out) == "cached"
    assert printed_path(second.out) == tree


def test_fetch_a_commit_only_a_pull_request_ref_points_to(fetch, repos, git_daemon):
    repos.create("demo", FILES)
    work = repos.work_tree("demo")
    git("checkout", "-q", "-b", "pr", cwd=work)
    (work / "hello.py").write_text("print('from the pull request')\n")
    git("commit", "-q", "-am", "pr", cwd=work)
    pr = git("rev-parse", "HEAD", cwd=work)
    repos.push_ref("demo", "HEAD", "refs/pull/1/head")
    bare = repos.bare / "demo.git"
    assert git("branch", "--contains", pr, cwd=bare) == ""  # no branch reaches it

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), pr)), "demo")

    assert result.code == 0, result.err
    tree = printed_path(result.out)
    assert head(tree) == pr
    assert (tree / "hello.py").read_text() == "print('from the pull request')\n"


def test_fetch_a_force_pushed_away_commit_fails_with_one_line(fetch, repos, git_daemon, cache_dir):
    base = repos.create("demo", FILES)
    gone = repos.commit("demo", {"hello.py": "print('soon gone')\n"})
    repos.force_back("demo", base)
    assert not has_object(repos.bare / "demo.git", gone)
    url = git_daemon.url("demo")

    result = fetch(demo_registry(git_code(url, gone)), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == (f"commit {gone[:12]} not found in {url}: check that it is typed right "
                                        "(the full id of a commit of this repository); if it is, it was force-pushed "
                                        "away or deleted upstream")
    assert "Traceback" not in result.err
    assert checkout_dirs(cache_dir) == []


def test_protocol_v0_server_refusing_unadvertised_commits_falls_back_to_all_refs(
        fetch, repos, git_daemon, cache_dir, isolated_environment, tmp_path):
    older = repos.create("demo", FILES)
    repos.commit("demo", {"hello.py": "print('tip')\n"})  # the pin is reachable but no longer a tip
    # The user's own git configuration is respected: this user speaks protocol v0 only.
    (isolated_environment / ".gitconfig").write_text("[protocol]\n\tversion = 0\n")
    probe = tmp_path / "probe.git"
    git("init", "-q", "--bare", str(probe))
    refused = subprocess.run(["git", "fetch", "--depth", "1", git_daemon.url("demo"), older], cwd=probe,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "unadvertised object" in refused.stderr  # what awrepro tries first

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), older)), "demo")

    assert result.code == 0, result.err
    assert head(printed_path(result.out)) == older
    mirror = mirror_of(cache_dir, "demo")
    refs = git_out("for-each-ref", "--format=%(refname)", cwd=mirror).splitlines()
    assert "refs/awrepro/remote/heads/main" in refs  # the fallback took every advertised ref
    assert f"refs/awrepro/pins/{older}" in refs
    copy = fetch(demo_registry(git_code(git_daemon.url("demo"), older)), "demo", "--dest", str(tmp_path / "mine"))
    assert copy.code == 0, copy.out  # the copy out of the cache speaks protocol v0 too
    assert head(tmp_path / "mine") == older


def test_protocol_v2_fetches_an_older_commit_shallow_without_the_fallback(fetch, repos, git_daemon, cache_dir):
    older = repos.create("demo", FILES)
    repos.commit("demo", {"hello.py": "print('tip')\n"})

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), older)), "demo")

    assert result.code == 0, result.err
    mirror = mirror_of(cache_dir, "demo")
    refs = git_out("for-each-ref", "--format=%(refname)", cwd=mirror).splitlines()
    assert refs == [f"refs/awrepro/pins/{older}"]
    assert (mirror / "shallow").is_file()


# ---------------------------------------------------------------- damaged checkouts


def test_verify_rebuilds_a_checkout_with_a_deleted_file(fetch, repos, git_daemon):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    tree = printed_path(fetch(registry, "demo").out)
    (tree / "hello.py").unlink()
    (tree / "pkg" / "mod.py").write_text("x = 'tampered'\n")

    plain = fetch(registry, "demo")
    assert (plain.code, state(plain.out)) == (0, "cached")  # without --verify only HEAD is checked
    assert not (tree / "hello.py").exists()

    verified = fetch(registry, "demo", "--verify")

    assert verified.code == 0, verified.err
    assert state(verified.out) == "fetched"
    assert printed_path(verified.out) == tree
    assert (tree / "hello.py").read_text() == "print('hi')\n"
    assert (tree / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert head(tree) == pin
    again = fetch(registry, "demo", "--verify")
    assert (again.code, state(again.out)) == (0, "cached")


def test_a_checkout_moved_to_another_commit_is_rebuilt_by_a_plain_fetch(fetch, repos, git_daemon, cache_dir):
    pin = repos.create("demo", FILES)
    newer = repos.commit("demo", {"hello.py": "print('newer')\n"})
    url = git_daemon.url("demo")
    registry = demo_registry(git_code(url, pin))
    tree = printed_path(fetch(registry, "demo").out)
    git_out("fetch", "-q", url, "main", cwd=tree)
    git_out("checkout", "-q", "--detach", newer, cwd=tree)
    assert head(tree) == newer

    result = fetch(registry, "demo")

    assert result.code == 0, result.err
    assert state(result.out) == "fetched"
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"
    assert tmp_leftovers(cache_dir / "checkouts") == []
    assert not list((cache_dir / "checkouts").glob(".trash-*"))


def test_a_checkout_switched_to_a_branch_is_rebuilt(fetch, repos, git_daemon):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    tree = printed_path(fetch(registry, "demo").out)
    git_out("checkout", "-q", "-b", "mine", cwd=tree)
    (tree / "hello.py").write_text("print('mine')\n")
    git_out("commit", "-q", "-am", "mine", cwd=tree)

    result = fetch(registry, "demo")

    assert (result.code, state(result.out)) == (0, "fetched")
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"


def test_a_mirror_that_lost_an_object_never_yields_a_trusted_checkout(fetch, repos, git_daemon, cache_dir):
    pin = repos.create("demo", FILES)
    registry = demo_registry(git_code(git_daemon.url("demo"), pin))
    tree = printed_path(fetch(registry, "demo").out)
    mirror = mirror_of(cache_dir, "demo")
    blob = git_out("rev-parse", f"{pin}:hello.py", cwd=mirror)
    (mirror / "objects" / blob[:2] / blob[2:]).unlink()  # a small fetch stores loose objects
    shutil.rmtree(tree.parent)

    result = fetch(registry, "demo")

    assert result.code == 1
    assert fetch_error(result.out) == (f"checkout of {pin[:12]} is incomplete: hello.py could not be written "
                                       f"(objects missing from {mirror}; remove it to fetch again)")
    assert checkout_dirs(cache_dir) == []
    shutil.rmtree(mirror)
    again = fetch(registry, "demo")
    assert again.code == 0, again.out
    assert (printed_path(again.out) / "hello.py").read_text() == "print('hi')\n"


# ---------------------------------------------------------------- --dest


def test_dest_is_an_independent_git_checkout_with_origin_upstream(fetch, repos, git_daemon, cache_dir, tmp_path):
    pin = repos.create("demo", FILES)
    repos.commit("demo", {"hello.py": "print('newer')\n"})
    url = git_daemon.url("demo")
    dest = tmp_path / "mine"

    result = fetch(demo_registry(git_code(url, pin)), "demo", "--dest", str(dest))

    assert result.code == 0, result.err
    assert printed_path(result.out) == dest
    assert head(dest) == pin
    assert git_out("remote", "get-url", "origin", cwd=dest) == url
    assert git_out("status", "--porcelain", cwd=dest) == ""
    assert not (dest / ".git" / "objects" / "info" / "alternates").exists()
    assert not list(dest.parent.glob(".tmp-*"))

    shutil.rmtree(cache_dir)
    assert git_out("log", "-1", "--format=%H", cwd=dest) == pin
    assert git_out("fsck", "--no-dangling", cwd=dest, check=False) == ""
    assert (dest / "hello.py").read_text() == "print('hi')\n"


def test_a_relative_dest(fetch, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), pin)), "demo", "--dest", "mine")  # in tmp_path/work

    assert result.code == 0, result.out
    assert head(tmp_path / "work" / "mine") == pin


def test_dest_that_is_not_empty_is_refused(fetch, repos, git_daemon, tmp_path, cache_dir):
    pin = repos.create("demo", FILES)
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me\n")

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), pin)), "demo", "--dest", str(dest))

    # A usage error, found before anything is fetched.
    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: --dest {dest}: exists and is not empty; give a new or empty folder\n"
    assert sorted(p.name for p in dest.iterdir()) == ["precious.txt"]
    assert not (cache_dir / "repos").exists()  # nothing was fetched
    # With several entries, each one's DEST/ID is checked the same way, all before fetching.
    other = repos.create("other", FILES)
    two = demo_registry(git_code(git_daemon.url("demo"), pin)) + demo_registry(git_code(git_daemon.url("other"), other)) \
        .replace("format = 1\n", "").replace("papers.demo", "papers.other")
    (tmp_path / "both" / "other").mkdir(parents=True)
    (tmp_path / "both" / "other" / "precious.txt").write_text("keep me\n")
    result = fetch(two, "demo", "other", "--dest", str(tmp_path / "both"))
    assert result.code == 2 and f"--dest {tmp_path / 'both' / 'other'}: exists and is not empty" in result.err
    assert not (tmp_path / "both" / "demo").exists() and not (cache_dir / "repos").exists()


def test_dest_that_is_a_file_is_refused(fetch, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    dest = tmp_path / "mine.txt"
    dest.write_text("keep me\n")

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), pin)), "demo", "--dest", str(dest))

    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: --dest {dest}: exists and is not a folder; give a new or empty folder\n"
    assert dest.read_text() == "keep me\n"


# ---------------------------------------------------------------- transports


def test_an_ext_url_is_refused_by_the_registry_schema(cli, fetch, tmp_path, cache_dir):
    witness = tmp_path / "pwned"
    text = demo_registry(git_code(f"ext::sh -c touch% {witness}", "a" * 40))
    registry = write_registry(tmp_path / "reg", text)

    validated = cli("--registry", str(registry), "validate")
    fetched = fetch(text, "demo")

    assert validated.code == 2
    assert f"papers.demo.impl.main.code.git: 'ext::sh -c touch% {witness}' is not an allowed git URL" in validated.err
    assert fetched.code == 2
    assert "is not an allowed git URL" in fetched.err
    assert not witness.exists()
    assert not (cache_dir / "repos").exists()


def test_a_file_url_needs_allow_file(fetch, repos):
    pin = repos.create("demo", FILES)
    url = f"file://{repos.bare / 'demo.git'}"
    registry = demo_registry(git_code(url, pin))

    refused = fetch(registry, "demo")

    assert refused.code == 1
    assert fetch_error(refused.out) == (f"refusing {url!r}: transport 'file' is not allowed; use https, ssh or git "
                                        "(local paths need --allow-file or AWREPRO_ALLOW_FILE_URLS=1)")

    allowed = fetch(registry, "demo", "--allow-file")
    assert allowed.code == 0, allowed.err
    assert head(printed_path(allowed.out)) == pin


def test_allow_file_urls_from_the_environment(fetch, repos, monkeypatch):
    pin = repos.create("demo", FILES)
    monkeypatch.setenv("AWREPRO_ALLOW_FILE_URLS", "1")

    result = fetch(demo_registry(git_code(f"file://{repos.bare / 'demo.git'}", pin)), "demo")

    assert result.code == 0, result.err
    assert head(printed_path(result.out)) == pin


# ---------------------------------------------------------------- patches


GOOD_PATCH = """\
--- a/hello.py
+++ b/hello.py
@@ -1 +1 @@
-print('hi')
+print('patched')
"""

BAD_PATCH = """\
--- a/hello.py
+++ b/hello.py
@@ -1 +1 @@
-print('something else entirely')
+print('patched')
"""


def _patched_registry(tmp_path: Path, url: str, pin: str, name: str, text: str) -> str:
    patch = tmp_path / "reg" / "patches" / name
    patch.parent.mkdir(parents=True, exist_ok=True)
    patch.write_text(text)
    return demo_registry(git_code(url, pin), env=f'patches = ["patches/{name}"]')


def test_a_patch_that_does_not_apply_names_the_hunk_in_one_line(fetch, repos, git_daemon, tmp_path, cache_dir):
    pin = repos.create("demo", FILES)
    url = git_daemon.url("demo")

    result = fetch(_patched_registry(tmp_path, url, pin, "bad.patch", BAD_PATCH), "demo")

    assert result.code == 1
    message = fetch_error(result.out)
    assert message.startswith(f"patch patches/bad.patch does not apply to {url}@{pin[:12]}: "
                              "the hunk at hello.py:1 does not match the file there")
    assert checkout_dirs(cache_dir) == []
    elsewhere = BAD_PATCH.replace("hello.py", "sub/missing.py")
    missing = fetch_error(fetch(_patched_registry(tmp_path, url, pin, "other.patch", elsewhere), "demo").out)
    assert missing.endswith("sub/missing.py is not in the checkout (paths in a patch start at the repository's "
                            "root, even for an entry with a subdir)")


def test_a_patch_that_applies_is_in_the_checkout_and_verify_keeps_it(fetch, repos, git_daemon, tmp_path):
    pin = repos.create("demo", FILES)
    registry = _patched_registry(tmp_path, git_daemon.url("demo"), pin, "good.patch", GOOD_PATCH)

    first = fetch(registry, "demo")

    assert first.code == 0, first.err
    tree = printed_path(first.out)
    assert (tree / "hello.py").read_text() == "print('patched')\n"
    assert head(tree) == pin
    for _ in range(2):  # a patched checkout is clean for --verify: no rebuild loop
        again = fetch(registry, "demo", "--verify")
        assert (again.code, state(again.out)) == (0, "cached"), again.err
    assert (tree / "hello.py").read_text() == "print('patched')\n"


# ---------------------------------------------------------------- network faults and stray variables


def test_a_repository_the_server_does_not_have(fetch, git_daemon, repos):
    repos.create("demo", FILES)
    url = git_daemon.url("nope")

    result = fetch(demo_registry(git_code(url, "0123456789abcdef0123456789abcdef01234567")), "demo")

    assert result.code == 1
    assert fetch_error(result.out) == f"repository not found: {url}"


def test_a_server_that_is_down(fetch, git_daemon, repos):
    pin = repos.create("demo", FILES)
    url = git_daemon.url("demo")
    git_daemon.stop()

    result = fetch(demo_registry(git_code(url, pin)), "demo")

    assert result.code == 1
    message = fetch_error(result.out)
    assert message.startswith(f"network unreachable: cannot connect to {url} ("), message
    assert "connection refused" in message.lower()  # the reason, not just "unable to connect to 127.0.0.1:"
    # ... and the ways out.
    assert message.endswith("; without this network, fetch from an offline mirror with --mirror DIR (made by "
                            "`awrepro mirror DIR` where it is reachable); or reach a copy of it through git's "
                            "url.<base>.insteadOf (README: Internal mirrors)"), message


def test_a_stray_git_dir_in_the_environment_does_not_break_fetch(fetch, repos, git_daemon, monkeypatch, cache_dir):
    pin = repos.create("demo", FILES)
    other = repos.create("other", {"other.txt": "other\n"})
    other_git = repos.work_tree("other") / ".git"
    monkeypatch.setenv("GIT_DIR", str(other_git))
    monkeypatch.setenv("GIT_WORK_TREE", str(repos.work_tree("other")))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other_git / "index"))

    result = fetch(demo_registry(git_code(git_daemon.url("demo"), pin)), "demo", "--verify", "--dest",
                   str(cache_dir.parent / "mine"))

    assert result.code == 0, result.err
    assert head(cache_dir.parent / "mine") == pin
    tree = next(checkout_dirs(cache_dir)[0].glob("demo"))
    assert head(tree) == pin
    assert (tree / "hello.py").read_text() == "print('hi')\n"
    monkeypatch.delenv("GIT_DIR")
    assert head(repos.work_tree("other")) == other  # the other repository was left alone
    assert "awrepro" not in git_out("for-each-ref", cwd=repos.work_tree("other"))
    assert os.environ.get("GIT_DIR") is None
