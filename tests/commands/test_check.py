"""`awrepro check` end to end: real git repositories on a real git daemon, real uv environments,
real smoke-test processes; statuses, exit codes, reports, history, regressions and shards."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from awrepro.results import STATUSES
from tests.commands.checkkit import (
    RANDOM_COMMIT,
    Project,
    Workspace,
    load_json,
    paper,
    processes_started_under,
    project,  # noqa: F401 (fixture)
    uv_cache,  # noqa: F401 (fixture)
    registry,
    result_lines,
    statuses,
    table_row,
    ws,  # noqa: F401 (fixture)
)
from tests.processes import wait_until


def mixed_registry(p: Project) -> str:
    """One entry per outcome awrepro knows, all cheap."""
    code: dict[str, Any] = {"url": p.url, "commit": p.sha}
    return registry(
        paper("ok", **code, command="python -c \"print('OK')\"", expect="OK"),
        paper("bad", **code, command="echo 'it broke: bad-marker' >&2; exit 3"),
        paper("hang", **code, command="sleep 300 & sleep 300", timeout=2),
        paper("nosetup", **code, command="true", steps=["exit 1"]),
        paper("gone", url=p.url, commit=RANDOM_COMMIT, command="true"),
        paper("nocode", no_code="the authors published none"),
        paper("gpu", **code, command="true", gpu=True),
        paper("stat", **code, static="python -c \"print('static ok')\""),
    )


MIXED_STATUSES = {
    "ok": "passed", "bad": "failed", "hang": "timeout", "nosetup": "setup-error", "gone": "fetch-error",
    "nocode": "skipped", "gpu": "skipped", "stat": "passed",
}


def test_each_outcome_gets_its_status_and_the_run_exits_1(ws: Workspace, project: Project) -> None:
    ws.write(mixed_registry(project))
    done = ws.run("check", "--all", "-j", "2", "--json", str(ws.root / "r.json"))

    assert done.code == 1, done.err
    report = load_json(ws.root / "r.json")
    assert statuses(report) == MIXED_STATUSES
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["stat"]["level"] == "static"
    assert by_id["ok"]["level"] == "smoke"
    assert by_id["hang"]["note"] == "timed out after 2 s"
    # The timed-out smoke test's grandchildren are gone too (a kill takes a moment on a loaded machine).
    assert wait_until(lambda: processes_started_under(ws.cache) == []), processes_started_under(ws.cache)
    assert by_id["gone"]["failed_stage"] == "fetch"
    assert by_id["gone"]["level"] is None and by_id["nosetup"]["level"] is None  # failed before their check ran
    assert table_row(done.out, "gone")[:3] == ["gone", "fetch-error", "fetch"]  # a blank Level cell
    assert by_id["nosetup"]["failed_stage"] == "setup"
    assert by_id["bad"]["failed_stage"] == "smoke"
    assert "bad-marker" in by_id["bad"]["note"]
    assert by_id["gpu"]["note"].startswith("needs a GPU")
    assert by_id["nocode"]["note"] == "no code: the authors published none"
    # The table and the result lines say the static entry passed at level static.
    assert table_row(done.out, "stat")[:3] == ["stat", "passed", "static"]
    assert table_row(done.out, "ok")[:3] == ["ok", "passed", "smoke"]
    lines = {m["id"]: m for m in result_lines(done.out)}
    assert (lines["stat"]["status"], lines["stat"]["level"]) == ("passed", "static")
    assert {i: m["status"] for i, m in lines.items()} == MIXED_STATUSES


def test_stages_record_which_stage_ended_the_entry(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(
        paper("ok", **code, command="sh smoke.sh", expect="smoke OK"),
        paper("bad", **code, command="exit 3"),
        paper("nosetup", **code, command="true", steps=["exit 1"]),
        paper("gone", url=project.url, commit=RANDOM_COMMIT, command="true"),
    ))
    assert ws.run("check", "--all", "--json", str(ws.root / "r.json")).code == 1
    stages = {r["id"]: [(s["name"], s["status"]) for s in r["stages"]] for r in load_json(ws.root / "r.json")["results"]}
    assert stages == {
        "ok": [("fetch", "ok"), ("setup", "ok"), ("smoke", "ok")],
        "bad": [("fetch", "ok"), ("setup", "ok"), ("smoke", "failed")],
        "nosetup": [("fetch", "ok"), ("setup", "setup-error")],
        "gone": [("fetch", "fetch-error")],
    }


def test_reports_junit_json_markdown_and_step_summary(ws: Workspace, project: Project,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = ws.root / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    ws.write(mixed_registry(project))
    json_path, junit_path, md_path = ws.root / "out" / "r.json", ws.root / "out" / "r.xml", ws.root / "out" / "r.md"
    done = ws.run("check", "--all", "-j", "2", "--json", str(json_path), "--junit", str(junit_path),
                  "--markdown", str(md_path))
    assert done.code == 1, done.err

    # JUnit: counts, a failure per failing entry carrying its log's tail, skipped elements.
    suite = ET.parse(junit_path).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("8", "4", "0", "2")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == set(MIXED_STATUSES)
    failures = {name: found for name, case in cases.items() if (found := case.find("failure")) is not None}
    assert {name: f.get("type") for name, f in failures.items()} == {
        "bad": "failed", "hang": "timeout", "nosetup": "setup-error", "gone": "fetch-error"}
    assert "it broke: bad-marker" in (failures["bad"].text or "")
    assert "exit 1" in (failures["nosetup"].text or "")
    assert RANDOM_COMMIT in (failures["gone"].text or "")
    assert {name for name, case in cases.items() if case.find("skipped") is not None} == {"nocode", "gpu"}
    assert "static" in (cases["stat"].findtext("system-out") or "")
    assert cases["ok"].find("failure") is None and cases["ok"].find("skipped") is None

    # JSON: the documented shape.
    report = load_json(json_path)
    assert set(report) == {"format", "version", "awrepro", "registry", "started_at", "finished_at", "interrupted",
                           "summary", "results"}
    assert (report["format"], report["version"], report["interrupted"]) == ("awrepro-report", 1, False)
    assert report["registry"].endswith("registry.toml")
    assert datetime.fromisoformat(report["started_at"]) <= datetime.fromisoformat(report["finished_at"])
    assert set(report["summary"]) >= set(STATUSES)
    assert report["summary"]["passed"] == 2 and report["summary"]["skipped"] == 2 and report["summary"]["error"] == 0
    assert sum(report["summary"].values()) == 8
    for result in report["results"]:
        assert set(result) == {"id", "full_id", "status", "level", "failed_stage", "duration", "note", "commit",
                               "env_key", "log_path", "stages"}, result
        assert result["full_id"] == (result["id"] if result["id"] == "nocode" else f"{result['id']}/main")
        for stage in result["stages"]:
            assert set(stage) == {"name", "status", "duration", "log_path"}
            assert Path(stage["log_path"]).is_file()
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["ok"]["commit"] == project.sha
    assert by_id["ok"]["env_key"] and by_id["ok"]["log_path"] is None
    assert "bad-marker" in Path(by_id["bad"]["log_path"]).read_text()

    # Markdown: one row per entry, the failures first.
    text = md_path.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    failing = ["bad", "hang", "nosetup", "gone"]
    assert [row.split("`")[1] for row in rows] == failing + [i for i in MIXED_STATUSES if i not in failing]
    for row in rows:
        assert MIXED_STATUSES[row.split("`")[1]] in row
    # GitHub Actions: the summary is appended to $GITHUB_STEP_SUMMARY.
    assert step_summary.read_text() == "earlier step\n" + text


def test_history_status_regression_and_fail_on(ws: Workspace, project: Project, repos) -> None:  # noqa: ANN001
    good = repos.create("flip", {"smoke.sh": "echo flip works\n"})
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}

    def write(flip_commit: str) -> None:
        ws.write(registry(
            paper("steady", **code, command="sh smoke.sh", expect="smoke OK"),
            paper("flip", url=project.url.replace("proj", "flip"), commit=flip_commit, command="sh smoke.sh",
                  expect="flip works"),
            paper("broken", **code, command="exit 3"),
        ))

    write(good)
    first = ws.run("check", "--all", "--fail-on", "regression")
    assert first.code == 0, first.out  # `broken` fails, but it never passed
    # Run 2: flip's upstream breaks, and the registry is bumped to the new commit.
    bad = repos.commit("flip", {"smoke.sh": "echo 'flip: error: it broke' >&2; exit 1\n"}, "break it")
    write(bad)
    second = ws.run("check", "--all", "--fail-on", "regression", "--json", str(ws.root / "r2.json"))
    assert second.code == 1, second.out
    assert statuses(load_json(ws.root / "r2.json")) == {"steady": "passed", "flip": "failed", "broken": "failed"}
    assert table_row(second.out, "flip")[:2] == ["flip", "failed (regression)"]
    assert table_row(second.out, "broken")[:2] == ["broken", "failed"]

    history = ws.run("history", "flip")
    assert history.code == 0
    runs = [line.split() for line in history.out.splitlines() if line[:1].isdigit()]
    assert [(r[0], r[2]) for r in runs] == [("2", "failed"), ("1", "passed")]
    assert bad[:12] in history.out and good[:12] in history.out

    status = ws.run("status")
    assert status.code == 0
    assert table_row(status.out, "flip")[1] == "failed" and table_row(status.out, "flip")[-1] == "regression"
    assert "regression" not in table_row(status.out, "broken")
    assert "regression" not in table_row(status.out, "steady")

    listing = ws.run("list")
    assert listing.code == 0
    assert table_row(listing.out, "flip")[-1] == "failed"
    assert table_row(listing.out, "steady")[-1] == "passed"

    # A failure that was already failing last time is no regression.
    assert ws.run("check", "flip", "broken", "--fail-on", "regression").code == 0
    assert ws.run("check", "--all", "--fail-on", "never").code == 0
    assert ws.run("check", "--all").code == 1  # --fail-on any (the default)
    assert len([line for line in ws.run("history", "steady").out.splitlines() if line[:1].isdigit()]) == 4


def test_shards_cover_every_entry_once_and_merge_like_a_full_run(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(
        *(paper(f"pass{i}", **code, command="sh smoke.sh", expect="OK") for i in range(4)),
        paper("fails", **code, command="exit 3"),
        paper("slower", **code, command="sleep 0.5"),
        paper("gone", url=project.url, commit=RANDOM_COMMIT, command="true"),
        paper("nocode", no_code="none"),
        paper("gpu", **code, command="true", gpu=True),
    ))
    all_ids = {"pass0", "pass1", "pass2", "pass3", "fails", "slower", "gone", "nocode", "gpu"}
    full_db = ws.root / "full.db"
    assert ws.run("check", "--all", "--db", str(full_db), "--json", str(ws.root / "full.json")).code == 1
    full = statuses(load_json(ws.root / "full.json"))
    assert set(full) == all_ids

    def shards(tag: str, history: Path | None) -> list[Path]:
        paths = []
        for k in (1, 2, 3):
            db = ws.root / f"{tag}-{k}.db"
            if history is not None:  # every shard reads the same history, as CI jobs started together do
                with sqlite3.connect(history) as source, sqlite3.connect(db) as copy:
                    source.backup(copy)
            out = ws.root / f"{tag}-{k}.json"
            done = ws.run("check", "--shard", f"{k}/3", "--db", str(db), "--json", str(out), "--fail-on", "never")
            assert done.code == 0, done.err
            paths.append(out)
        ids = [r["id"] for path in paths for r in load_json(path)["results"]]
        assert sorted(ids) == sorted(all_ids), (tag, ids)  # every entry exactly once
        assert all(load_json(path)["results"] for path in paths)  # no shard is empty
        return paths

    fresh = shards("fresh", None)
    balanced = shards("timed", full_db)
    for paths in (fresh, balanced):
        merged = ws.root / "merged"
        done = ws.run("report", "merge", *map(str, paths), "--json", f"{merged}.json", "--junit", f"{merged}.xml",
                      "--markdown", f"{merged}.md")
        assert done.code == 1  # `fails` failed
        report = load_json(Path(f"{merged}.json"))
        assert statuses(report) == full
        assert report["summary"] == load_json(ws.root / "full.json")["summary"]
        assert report["interrupted"] is False
        suite = ET.parse(f"{merged}.xml").getroot()
        assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("9", "2", "2")
        rows = [line for line in Path(f"{merged}.md").read_text().splitlines() if line.startswith("| `")]
        assert sorted(row.split("`")[1] for row in rows) == sorted(all_ids)
    assert ws.run("report", "merge", *map(str, fresh), "--fail-on", "never").code == 0
    # More shards than entries: the spare shard runs nothing and succeeds.
    empty = ws.run("check", "--shard", "10/10", "--db", str(ws.root / "fresh-1.db"), "--json", str(ws.root / "e.json"))
    assert empty.code == 0, empty.err
    assert load_json(ws.root / "e.json")["results"] == []
    assert ws.run("report", "merge", *map(str, fresh), str(ws.root / "e.json"), "--json", str(ws.root / "m.json")).code == 1
    assert statuses(load_json(ws.root / "m.json")) == full
    bogus = ws.run("report", "merge", *map(str, fresh), "--fail-on", "nevr")
    assert bogus.code == 2 and "--fail-on 'nevr'" in bogus.err


def test_timeout_option_jobs_and_plain_output(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(
        paper("ok", **code, command="sh smoke.sh", expect="smoke OK"),
        paper("bad", **code, command="exit 3"),
        paper("sleepy", **code, command="sleep 30", timeout=300),
        paper("nocode", no_code="none"),
    ))
    expected = {"ok": "passed", "bad": "failed", "sleepy": "timeout", "nocode": "skipped"}
    for jobs in ("1", "2"):
        # 5 s: `ok` and `bad` end well within it on a loaded machine too; `sleepy` never does.
        done = ws.run("check", "--all", "-j", jobs, "--timeout", "5", "--json", str(ws.root / f"j{jobs}.json"))
        assert done.code == 1, done.err
        report = load_json(ws.root / f"j{jobs}.json")
        assert statuses(report) == expected
        assert {r["id"]: r["note"] for r in report["results"]}["sleepy"] == "timed out after 5 s"
        # Not a terminal: no control codes, and exactly one plain line per finished entry.
        assert "\x1b[" not in done.out + done.err
        lines = result_lines(done.out)
        assert sorted(m["id"] for m in lines) == sorted(expected)
        assert {m["id"]: m["status"] for m in lines} == expected


def test_report_page_has_a_row_per_entry_with_stage_times_and_notes(ws: Workspace, project: Project) -> None:
    text = registry(
        paper("ok", url=project.url, commit=project.sha, command="python -c \"print('OK')\""),
        paper("stat", url=project.url, commit=project.sha, static="true"),
        paper("nocode", no_code="nothing published"),
    ).replace("[papers.ok.impl.main.code]", '[papers.ok.impl.main]\nnotes = ["numpy<1.24: np.int is gone"]\n\n'
                                             "[papers.ok.impl.main.code]")
    ws.write(text)
    cold, warm, page = ws.root / "cold.json", ws.root / "warm.json", ws.root / "docs" / "status.md"
    assert ws.run("check", "--all", "--json", str(cold)).code == 0
    assert ws.run("check", "--all", "--json", str(warm)).code == 0
    done = ws.run("report", "page", str(cold), "--warm", str(warm), "--output", str(page))
    assert done.code == 0, done.err
    lines = page.read_text().splitlines()
    assert lines[0] == "# Registry status"
    assert any(line.startswith("- Result: 2 passed, 1 skipped.") for line in lines)
    assert any(line.startswith("- Warm re-run (everything cached): ") for line in lines)
    rows = {line.split(" | ")[0].strip("| `"): line for line in lines if line.startswith("| `")}
    assert set(rows) == {"ok", "stat", "nocode"}
    ok = [cell.strip() for cell in rows["ok"].strip("|").split("|")]
    assert ok[2:4] == ["passed", "smoke"]
    assert all(cell.endswith(" s") for cell in ok[4:8])  # fetch, setup, smoke, total
    assert ok[8] == "numpy<1.24: np.int is gone"
    assert "static check only: a static check only" in rows["stat"]
    assert "no code: nothing published" in rows["nocode"]
