"""A cache on a read-only filesystem: the commands that only read it work, with the real history,
and every command that writes stops at once with one line naming the folder (exit 2).

The filesystem is really read-only: each awrepro runs under ``bwrap --ro-bind CACHE CACHE``, a
read-only bind mount in a mount namespace of its own that ends with the process (root ignores
permission bits, so chmod would prove nothing). One warm cache, built by real checks of a git
entry served by ``git daemon``, is shared by the module.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.commands.checkkit import paper, registry, table_row
from tests.commands.test_history import SCHEMA_V0
from tests.gitfixtures import GitDaemon, RepoFactory, git

@dataclass
class Done:
    code: int
    out: str
    err: str


@dataclass
class Warm:
    root: Path
    registry: Path
    cache: Path
    sha: str

    def run(self, *args: str, read_only: Path | None = None, cache: Path | None = None) -> Done:
        """awrepro ARGS with ``read_only`` (default: the cache) mounted read-only for it alone."""
        folder = read_only or self.cache
        argv = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(folder), str(folder),
                sys.executable, "-m", "awrepro", "--registry", str(self.registry), "--cache-dir",
                str(cache or self.cache), *args]
        done = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=120)
        return Done(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warm]:
    """A cache holding a checkout, an environment, run logs, a link result and a history:
    `demo` passed twice, `broken` failed once, `never` was never checked."""
    root = tmp_path_factory.mktemp("ro")
    env = {**os.environ, "HOME": str(root), "UV_CACHE_DIR": str(tmp_path_factory.mktemp("uv")),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid", "GIT_CONFIG_NOSYSTEM": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        repos = RepoFactory(root / "git")
        sha = {name: repos.create(name, {"README.md": f"{name}'s code\n"}) for name in ("demo", "broken", "never")}
        for name in sha:  # a default branch, for `links` (git ls-remote follows HEAD)
            git("symbolic-ref", "HEAD", "refs/heads/main", cwd=repos.bare / f"{name}.git")
        daemon = GitDaemon(repos.bare)
        daemon.start()
        try:
            text = registry(*(paper(name, url=daemon.url(name), commit=sha[name], command=command)
                              for name, command in (("demo", "echo smoke OK"), ("broken", "exit 3"), ("never", "true"))))
            warm = Warm(root, root / "registry.toml", root / "cache", sha["demo"])
            warm.registry.write_text(text)
            for args, code in ((("check", "demo", "broken"), 1), (("check", "demo"), 0), (("links",), 0)):
                done = subprocess.run([sys.executable, "-m", "awrepro", "--registry", str(warm.registry),
                                       "--cache-dir", str(warm.cache), *args], cwd=root, capture_output=True, text=True,
                                      timeout=300)
                assert done.returncode == code, done.stdout + done.stderr
        finally:
            daemon.stop()
        yield warm


def test_reading_commands_show_the_real_history_of_a_read_only_cache(warm: Warm) -> None:
    listed = warm.run("list")
    assert listed.code == 0, listed.err
    assert table_row(listed.out, "demo")[-1] == "passed" and table_row(listed.out, "broken")[-1] == "failed"
    status = warm.run("status")
    assert status.code == 0, status.err
    demo = table_row(status.out, "demo")
    assert demo[1] == "passed" and demo[2].startswith("passing since ") and demo[3] == "2", demo
    assert table_row(status.out, "broken")[1] == "failed"
    assert table_row(status.out, "never")[1] == "never checked"
    rows = json.loads(warm.run("history", "demo", "--json").out)["runs"]
    assert [(r["run"], r["status"]) for r in rows] == [(2, "passed"), (1, "passed")]
    assert all(r["commit"] == warm.sha for r in rows)
    shown = warm.run("show", "broken")
    assert shown.code == 0, shown.err
    assert "last runs  " in shown.out and " failed (smoke)" in shown.out and "logs: " in shown.out
    log = warm.run("log", "demo")
    assert log.code == 0 and log.out.splitlines()[-1] == "smoke OK", log.out + log.err
    plan = warm.run("check", "--all", "--dry-run")
    assert plan.code == 0, plan.err
    assert "code cached" in plan.out and "env ready" in plan.out
    failed = warm.run("check", "--failed", "--dry-run")  # --failed reads the history
    assert failed.code == 0 and [line.split()[0] for line in failed.out.splitlines()] == ["broken"], failed.out
    for args, said in ((("validate",), "registry.toml: valid (3 papers, 3 implementations)\n"),
                       (("cache",), f"cache: {warm.cache}\n"), (("gc", "--dry-run"), "0 unused items, would free 0 B\n"),
                       (("render", os.devnull, "--check"), f"{os.devnull}: up to date\n")):
        done = warm.run(*args)
        assert done.code == 0 and said in done.out + done.err and "error" not in done.err, (args, done.out, done.err)
    doctor = json.loads(warm.run("doctor", "--json").out)
    cache_check = next(c for c in doctor["checks"] if c["name"] == "cache")
    assert cache_check["status"] == "warning" and "Read-only file system" in cache_check["detail"]
    links = warm.run("links", "--json")  # the git daemon is gone: its good result comes from the link cache
    assert links.code == 0, links.out + links.err
    assert {(link["status"], link["cached"]) for link in json.loads(links.out)["links"]} == {("ok", True)}


@pytest.mark.parametrize("args", [
    ("fetch", "demo"), ("setup", "demo"), ("check", "demo"), ("check", "--all", "--json", "report.json"),
    ("run", "demo", "--", "true"), ("gc",), ("mirror", "mirror-out", "demo"),
    ("new", "git://127.0.0.1:9/x.git", "--into", "new.toml"), ("bump", "demo", "--check", "--to", "0" * 40),
], ids=lambda args: "-".join(a for a in args[:2] if not a.startswith("git:")))
def test_a_writing_command_stops_at_once_naming_the_read_only_cache(warm: Warm, args: tuple[str, ...]) -> None:
    text = warm.registry.read_text()
    done = warm.run(*args)
    assert (done.code, done.out, done.err) == (2, "", (
        f"error: the cache {warm.cache} is read-only (Read-only file system); set AWREPRO_CACHE_DIR or --cache-dir "
        "to a writable folder\n"))
    assert warm.registry.read_text() == text  # bump moved no pin
    assert not any((warm.root / name).exists() for name in ("report.json", "mirror-out", "new.toml"))


def test_collecting_a_slurm_run_in_a_read_only_cache_stops_at_once(warm: Warm) -> None:
    run_dir = warm.cache / "logs" / "20261201-000000-check-1-1"
    (run_dir / "slurm").mkdir(parents=True)  # made while writable, then mounted read-only
    (run_dir / "slurm" / "run.json").write_text(json.dumps(
        {"meta": {"db": str(warm.cache / "results.db")}, "finished": [], "pending": [], "arrays": []}))
    try:
        done = warm.run("report", "collect", str(run_dir))
    finally:
        shutil.rmtree(run_dir)
    assert (done.code, done.out, done.err) == (2, "", (
        f"error: the run folder {run_dir / 'slurm'} is read-only (Read-only file system); collect the run where "
        "its cache can be written\n"))


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_a_cold_read_only_cache_lists_and_refuses_to_build(warm: Warm, kind: str) -> None:
    folder = warm.root / f"cold-{kind}"
    folder.mkdir(exist_ok=True)
    cache = folder / "cache"
    if kind == "empty":
        cache.mkdir(exist_ok=True)
    status = warm.run("status", read_only=folder, cache=cache)
    assert status.code == 0 and table_row(status.out, "demo")[1] == "never checked", status.out + status.err
    listed = warm.run("list", read_only=folder, cache=cache)
    assert listed.code == 0 and table_row(listed.out, "demo")[-1].endswith(f"@{warm.sha[:7]}"), listed.out + listed.err
    check = warm.run("check", "demo", read_only=folder, cache=cache)
    assert check.code == 2 and check.err.startswith(f"error: the cache {cache} is read-only"), check.err


def _killed_writer_adds(db: Path, status: str) -> None:
    """A result written by a process killed before it closed the database: it stays in the WAL."""
    code = (f"import os, sqlite3; c = sqlite3.connect({str(db)!r}, isolation_level=None); "
            "c.execute('PRAGMA journal_mode=WAL'); "
            "c.execute(\"INSERT INTO results SELECT 99, entry_id, ?, level, stage, duration, 'from the WAL', "
            "commit_sha, env_key, log_path, finished_at, finished + 60, spec_digest, log_dir FROM results "
            "WHERE entry_id = 'demo/main' AND run_id = 2\", (" + repr(status) + ",)); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("index", ["kept", "lost"])
def test_results_still_in_the_wal_of_a_killed_writer_are_read(warm: Warm, index: str) -> None:
    folder = warm.root / f"wal-{index}"
    folder.mkdir()
    db = folder / "results.db"
    shutil.copyfile(warm.cache / "results.db", db)
    _killed_writer_adds(db, "timeout")
    assert (folder / "results.db-wal").stat().st_size > 0
    if index == "lost":  # no WAL index: SQLite cannot read the WAL in place on a read-only filesystem
        (folder / "results.db-shm").unlink()
    done = warm.run("history", "demo", "--db", str(db), read_only=folder)
    assert done.code == 0, done.err
    assert [row.split()[:3][::2] for row in done.out.splitlines()[1:]] == [["99", "timeout"], ["2", "passed"],
                                                                          ["1", "passed"]]


def test_an_older_database_on_a_read_only_filesystem_is_read_without_migrating_it(warm: Warm) -> None:
    folder = warm.root / "old"
    folder.mkdir()
    db = folder / "results.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA_V0)
        conn.execute("INSERT INTO runs (id, started_at, registry, awrepro_version) VALUES "
                     "(1, '2026-01-01T10:00:00+00:00', 'registry.toml', '0.1.0')")
        conn.execute("INSERT INTO results (run_id, entry_id, status, level, duration, note, finished_at) "
                     "VALUES (1, 'demo/main', 'failed', 'smoke', 1.5, 'old', '2026-01-01T10:09:00+00:00')")
    conn.close()
    done = warm.run("status", "--db", str(db), read_only=folder)
    assert done.code == 0, done.err
    assert table_row(done.out, "demo")[1:3] == ["failed", "failing since 2026-01-01, 1 run"]

