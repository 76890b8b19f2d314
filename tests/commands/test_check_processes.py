"""`awrepro check` as a real process: Ctrl-C mid-run, and two runs at once on one results database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.commands.checkkit import (
    Project,
    Workspace,
    load_json,
    paper,
    pid_sleeper,
    project,  # noqa: F401 (fixture)
    registry,
    statuses,
    table_row,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)


def history_runs(ws: Workspace, entry_id: str, db: Path) -> list[list[str]]:
    done = ws.run("history", entry_id, "--db", str(db))
    assert done.code == 0, done.err
    return [line.split() for line in done.out.splitlines() if line[:1].isdigit()]


def test_ctrl_c_kills_every_child_and_reports_every_entry(ws: Workspace, project: Project, pid_reports) -> None:  # noqa: ANN001
    ready, later_ready = pid_reports(), pid_reports()
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    # -j 2 and entries in this order: `slow` and `quick` start; `later` takes quick's worker and
    # holds it; `never` waits for a free worker and does not get one before Ctrl-C.
    ws.write(registry(
        paper("slow", **code, command=f"{pid_sleeper(ready)} & {pid_sleeper(ready)}; wait", timeout=600),
        paper("quick", **code, command="sh smoke.sh", expect="OK"),
        paper("later", **code, command=pid_sleeper(later_ready), timeout=600),
        paper("never", **code, command="true"),
    ))
    report, junit, markdown = ws.root / "partial.json", ws.root / "partial.xml", ws.root / "partial.md"
    stdout = ws.root / "stdout.txt"
    with stdout.open("w") as out:
        child = subprocess.Popen(ws.argv("check", "--all", "-j", "2", "--json", str(report), "--junit", str(junit),
                                         "--markdown", str(markdown)),
                                 stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        ready.wait(2), later_ready.wait(1)  # each sleeper reports once it runs
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == 130, err
    assert "interrupted: 1 of 4 entries finished and were recorded" in err
    assert ready.gone() and later_ready.gone()  # every sleeper died: their connections ended
    # Every selected entry is accounted for, everywhere; those that did not finish are `interrupted`.
    expected = {"slow": "interrupted", "quick": "passed", "later": "interrupted", "never": "interrupted"}
    partial = load_json(report)
    assert partial["interrupted"] is True
    assert statuses(partial) == expected
    by_id = {r["id"]: r for r in partial["results"]}
    assert (by_id["slow"]["failed_stage"], by_id["slow"]["note"], by_id["slow"]["level"]) == (
        "smoke", "interrupted during smoke", None)
    assert Path(by_id["slow"]["log_path"]).is_file()
    assert (by_id["never"]["failed_stage"], by_id["never"]["note"]) == (None, "not started: the run was interrupted")
    assert partial["summary"]["passed"] == 1 and partial["summary"]["interrupted"] == 3
    out_text = stdout.read_text()
    for entry_id, status in expected.items():
        assert table_row(out_text, entry_id)[:2] == [entry_id, status]
    assert "1 passed, 3 interrupted" in out_text
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "3")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {name for name, case in cases.items() if case.find("error") is not None} == {"slow", "later", "never"}
    slow_error = cases["slow"].find("error")
    assert slow_error is not None and slow_error.get("type") == "interrupted"
    md_rows = [line.split("`")[1] for line in markdown.read_text().splitlines() if line.startswith("| `")]
    assert md_rows == ["slow", "later", "never", "quick"]  # what did not pass first
    assert "1 passed, 3 interrupted" in markdown.read_text()
    # What finished is in the history; what did not finish is no verdict and is not.
    assert [row[2] for row in history_runs(ws, "quick", ws.cache / "results.db")] == ["passed"]
    assert history_runs(ws, "slow", ws.cache / "results.db") == []
    with sqlite3.connect(ws.cache / "results.db") as conn:
        assert conn.execute("SELECT interrupted, finished_at IS NOT NULL FROM runs").fetchall() == [(1, 1)]


def test_sigterm_is_handled_like_ctrl_c(ws: Workspace, project: Project, pid_reports) -> None:  # noqa: ANN001
    ready = pid_reports()
    ws.write(registry(paper("slow", url=project.url, commit=project.sha, command=pid_sleeper(ready))))
    child = subprocess.Popen(ws.argv("check", "--all", "--json", str(ws.root / "r.json")), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        ready.wait(1)
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130
    assert ready.gone()
    partial = load_json(ws.root / "r.json")
    assert partial["interrupted"] is True and statuses(partial) == {"slow": "interrupted"}


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
