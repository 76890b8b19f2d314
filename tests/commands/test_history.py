"""The results history: time order across overlapping runs, `fixed` and `regression` against the
previous run only, the in-place migration of an older database, and databases that cannot be used."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from awrepro.history import SCHEMA_VERSION
from tests.commands.checkkit import (
    Project,
    Workspace,
    paper,
    project,  # noqa: F401 (fixture)
    registry,
    table_row,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)
from tests.processes import wait_until

# The schema awrepro 0.1.0 wrote (user_version 0), with its ISO timestamps of one-second resolution.
SCHEMA_V0 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
    registry TEXT NOT NULL, awrepro_version TEXT NOT NULL, interrupted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE results (run_id INTEGER NOT NULL REFERENCES runs(id), entry_id TEXT NOT NULL, status TEXT NOT NULL,
    level TEXT, stage TEXT, duration REAL NOT NULL, note TEXT NOT NULL DEFAULT '', commit_sha TEXT, env_key TEXT,
    log_path TEXT, finished_at TEXT NOT NULL, PRIMARY KEY (run_id, entry_id));
CREATE INDEX results_by_entry ON results(entry_id, run_id);
"""


def history_rows(ws: Workspace, entry_id: str, *args: str) -> list[list[str]]:
    done = ws.run("history", entry_id, *args)
    assert done.code == 0, done.err
    return [line.split() for line in done.out.splitlines() if line[:1].isdigit()]


def test_overlapping_runs_are_ordered_by_time_everywhere(ws: Workspace, project: Project) -> None:
    # The first smoke test holds until `go` exists, then fails; the second passes at once. Smoke tests
    # write nowhere outside (the sandbox) but read the cache: the test signals through files there,
    # and sees the first one hold in its log.
    second, go = ws.cache / "second-run", ws.cache / "go"
    command = (f"if [ -e {second} ]; then exit 0; fi; echo holding; while [ ! -f {go} ]; do sleep 0.05; done; "
               "echo 'error: the slow run failed' >&2; exit 1")
    ws.write(registry(paper("entmax", url=project.url, commit=project.sha, command=command)))
    long_run = subprocess.Popen(ws.argv("check", "--all"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    try:
        holding = lambda: any("holding" in log.read_text() for log in ws.cache.glob("logs/*/entmax--main/smoke.log"))  # noqa: E731
        assert wait_until(holding), "the first run's smoke test never started"
        second.touch()
        short = ws.run("check", "entmax")  # run 2 starts after run 1 and finishes before it
        assert short.code == 0, short.out + short.err
        go.touch()
        out, err = long_run.communicate(timeout=60)
    finally:
        if long_run.poll() is None:
            long_run.kill()
            long_run.wait()
    assert long_run.returncode == 1, out + err
    # Run 1's failure came after run 2's pass: a regression, and the latest result everywhere.
    assert table_row(out, "entmax")[:2] == ["entmax", "failed (regression)"]
    assert [(row[0], row[2]) for row in history_rows(ws, "entmax")] == [("1", "failed"), ("2", "passed")]
    status = ws.run("status")
    assert table_row(status.out, "entmax")[1] == "failed" and table_row(status.out, "entmax")[-1] == "regression"
    assert table_row(ws.run("list").out, "entmax")[-1] == "failed"
    shown = ws.run("show", "entmax").out
    assert "failed (smoke): error: the slow run failed" in shown.split("last runs", 1)[1].splitlines()[0]


def test_fixed_means_failed_in_the_previous_run(ws: Workspace, project: Project) -> None:
    flag = ws.cache / "broken"  # smoke tests see the cache (the sandbox hides the rest of /tmp)
    ws.write(registry(paper("flaky", url=project.url, commit=project.sha, command=f"test ! -f {flag}")))
    ws.cache.mkdir()
    flag.touch()
    assert ws.run("check", "flaky").code == 1
    flag.unlink()
    assert ws.run("check", "flaky").code == 0
    assert table_row(ws.run("status").out, "flaky")[-1] == "fixed"
    assert ws.run("check", "flaky").code == 0
    row = table_row(ws.run("status").out, "flaky")
    assert row[1:] == ["passed", row[2], "2"]  # passing for 2 runs; no longer "fixed"
    assert "since" in row[2]


def test_an_older_database_is_migrated_in_place_keeping_every_result(ws: Workspace, project: Project) -> None:
    ws.write(registry(paper("demo", url=project.url, commit=project.sha, command="true"),
                      paper("other", url=project.url, commit=project.sha, command="true")))
    db = ws.root / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA_V0)
        for run_id, started in ((1, "2026-01-01T10:00:00+00:00"), (2, "2026-01-01T10:05:00+00:00")):
            conn.execute("INSERT INTO runs (id, started_at, finished_at, registry, awrepro_version) "
                         "VALUES (?, ?, ?, 'registry.toml', '0.1.0')", (run_id, started, started))
        # Run 1 (started first) finished `demo` last: its failure is the latest result.
        rows = [(1, "demo", "failed", "2026-01-01T10:09:00+00:00"), (2, "demo", "passed", "2026-01-01T10:06:00+00:00"),
                (1, "other", "passed", "2026-01-01T10:01:00+00:00")]
        for run_id, entry, status, finished in rows:
            conn.execute("INSERT INTO results (run_id, entry_id, status, level, duration, note, finished_at) "
                         "VALUES (?, ?, ?, 'smoke', 1.5, '', ?)", (run_id, f"{entry}/main", status, finished))
    conn.close()

    assert [(r[0], r[1], r[2]) for r in history_rows(ws, "demo", "--db", str(db))] == [
        ("1", "2026-01-01T10:09:00+00:00", "failed"), ("2", "2026-01-01T10:06:00+00:00", "passed")]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (3,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    status = ws.run("status", "--db", str(db))
    assert table_row(status.out, "demo")[1] == "failed" and table_row(status.out, "demo")[-1] == "regression"
    assert table_row(status.out, "other")[1] == "passed"
    # New results go after the migrated ones.
    assert ws.run("check", "demo", "--db", str(db)).code == 0
    assert [(r[0], r[2]) for r in history_rows(ws, "demo", "--db", str(db))] == [
        ("3", "passed"), ("1", "failed"), ("2", "passed")]
    assert table_row(ws.run("status", "--db", str(db)).out, "demo")[-1] == "fixed"


def test_a_database_of_a_newer_awrepro_is_refused(ws: Workspace, project: Project) -> None:
    ws.write(registry(paper("demo", url=project.url, commit=project.sha, command="true")))
    db = ws.root / "newer.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    done = ws.run("status", "--db", str(db))
    assert done.code == 2
    assert done.err.startswith(f"error: the results database {db} was written by a newer awrepro")


def _damage_pages(db: Path) -> None:
    """Overwrite every page but the first (the header and the schema stay readable)."""
    size = db.stat().st_size
    page = 4096
    assert size > 3 * page, size
    with db.open("r+b") as handle:
        handle.seek(page)
        handle.write(b"\xa5" * (size - page))


@pytest.mark.parametrize("damage", ["garbage", "pages"])
def test_a_damaged_database_stops_check_before_any_work(ws: Workspace, project: Project, damage: str) -> None:
    ws.write(registry(*(paper(f"e{i}", url=project.url, commit=project.sha, command="true", expect=None)
                        for i in range(3))))
    db = ws.root / "results.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 400)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE filler (x TEXT)")
            conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(100)])
        conn.close()
        assert ws.run("check", "--all", "--db", str(db)).code == 0
        _damage_pages(db)
    logs_before = sorted((ws.cache / "logs").glob("*")) if (ws.cache / "logs").exists() else []

    done = ws.run("check", "--all", "--db", str(db))
    assert done.code == 2, done.out + done.err
    first, *rest = done.err.splitlines()
    assert first.startswith(f"error: ") and str(db) in first
    assert rest == [f"To start a new history, move it away (mv {db} {db}.broken; awrepro makes a new one), "
                    "or use another one: --db PATH (or $AWREPRO_DB)."]
    assert done.out == ""  # nothing was checked
    logs_after = sorted((ws.cache / "logs").glob("*")) if (ws.cache / "logs").exists() else []
    assert logs_after == logs_before
    for command in (("status",), ("history", "e0")):
        seen = ws.run(*command, "--db", str(db))
        assert seen.code == 2, seen.out
        assert "never checked" not in seen.out and str(db) in seen.err
    # The way out works.
    db.rename(db.with_name(db.name + ".broken"))
    assert ws.run("check", "--all", "--db", str(db)).code == 0


def test_a_read_only_database_stops_check_before_any_work(ws: Workspace, project: Project) -> None:
    ws.write(registry(paper("demo", url=project.url, commit=project.sha, command="true")))
    db = ws.root / "results.db"
    assert ws.run("check", "demo", "--db", str(db)).code == 0
    # Root ignores file modes; an immutable file cannot be written even by root.
    assert subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0, "chattr +i unsupported here"
    try:
        done = ws.run("check", "demo", "--db", str(db))
        assert done.code == 2, done.out + done.err
        assert done.err.splitlines()[0].startswith(f"error: cannot write to the results database {db}: it is read-only")
        assert done.out == ""
        assert [r[2] for r in history_rows(ws, "demo", "--db", str(db))] == ["passed"]  # reading still works
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
