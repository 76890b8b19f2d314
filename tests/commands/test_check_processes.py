"""`awrepro check` as a real process: Ctrl-C mid-run, and two runs at once on one results database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from tests.commands.checkkit import (
    Project,
    Workspace,
    load_json,
    paper,
    processes_with,
    project,  # noqa: F401 (fixture)
    registry,
    statuses,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)


def wait_for(condition, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def history_runs(ws: Workspace, entry_id: str, db: Path) -> list[list[str]]:
    done = ws.run("history", entry_id, "--db", str(db))
    assert done.code == 0, done.err
    return [line.split() for line in done.out.splitlines() if line[:1].isdigit()]


def test_ctrl_c_kills_every_child_and_writes_a_partial_report(ws: Workspace, project: Project) -> None:
    token = f"awrepro-test-{uuid.uuid4().hex}"
    sleeper = f"python -c 'import time; time.sleep(300)' {token}"
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(
        paper("slow", **code, command=f"{sleeper} & {sleeper}", timeout=600),  # a child and a grandchild
        paper("quick", **code, command="sh smoke.sh", expect="OK"),
    ))
    report = ws.root / "partial.json"
    stdout = ws.root / "stdout.txt"
    with stdout.open("w") as out:
        child = subprocess.Popen(ws.argv("check", "--all", "-j", "2", "--json", str(report)), stdout=out,
                                 stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: "quick  passed" in stdout.read_text(), "the quick entry to finish")
        wait_for(lambda: len(processes_with(token)) >= 2, "the slow smoke test to start")  # a child and a grandchild
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, err
    assert "interrupted" in err
    assert processes_with(token) == []
    partial = load_json(report)
    assert partial["interrupted"] is True
    assert statuses(partial) == {"quick": "passed"}
    assert partial["summary"]["passed"] == 1
    # The finished entry was recorded in the history too.
    assert [row[2] for row in history_runs(ws, "quick", ws.cache / "results.db")] == ["passed"]
    assert history_runs(ws, "slow", ws.cache / "results.db") == []
    with sqlite3.connect(ws.cache / "results.db") as conn:
        assert conn.execute("SELECT interrupted, finished_at IS NOT NULL FROM runs").fetchall() == [(1, 1)]


def test_sigterm_is_handled_like_ctrl_c(ws: Workspace, project: Project) -> None:
    token = f"awrepro-test-{uuid.uuid4().hex}"
    ws.write(registry(paper("slow", url=project.url, commit=project.sha,
                            command=f"python -c 'import time; time.sleep(300)' {token}")))
    child = subprocess.Popen(ws.argv("check", "--all", "--json", str(ws.root / "r.json")), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: processes_with(token), "the smoke test to start")
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130
    assert processes_with(token) == []
    partial = load_json(ws.root / "r.json")
    assert partial["interrupted"] is True and partial["results"] == []


def test_concurrent_runs_share_one_database(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ids = [f"entry{i}" for i in range(6)]
    ws.write(registry(*(paper(i, **code, command="sh smoke.sh", expect="OK") for i in ids),
                      paper("bad", **code, command="exit 3")))
    db = ws.root / "shared" / "results.db"
    runs = [
        subprocess.Popen(ws.argv("check", "--all", "-j", "2", "--db", str(db), "--json", str(ws.root / f"r{n}.json")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                         env={**os.environ, "COLUMNS": "200"})
        for n in (1, 2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 1, (out, err)  # `bad` fails; nothing else does
    for n in (1, 2):
        assert statuses(load_json(ws.root / f"r{n}.json")) == {**dict.fromkeys(ids, "passed"), "bad": "failed"}

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL").fetchone() == (2,)
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (14,)
    for entry_id in [*ids, "bad"]:
        rows = history_runs(ws, entry_id, db)
        assert sorted(row[0] for row in rows) == ["1", "2"], (entry_id, rows)
        assert {row[2] for row in rows} == {"failed" if entry_id == "bad" else "passed"}
