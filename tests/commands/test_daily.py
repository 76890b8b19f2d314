"""Daily use through the real entry point: `log`, choosing entries, and machine-readable output."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.gitfixtures import free_port
from tests.commands.checkkit import (
    Project,
    Workspace,
    paper,
    project,  # noqa: F401 (fixture)
    registry,
    result_lines,
    uv_cache,  # noqa: F401 (fixture)
    ws,  # noqa: F401 (fixture)
)


def tagged(pid: str, tags: list[str], section: str = "Tests", **kwargs: object) -> str:
    """``paper`` with tags and a section of its own."""
    text = paper(pid, **kwargs)  # type: ignore[arg-type]
    head = f'section = "Tests"\n'
    return text.replace(head, f'section = "{section}"\ntags = {json.dumps(tags)}\n', 1)


def four(p: Project, bad_command: str = "echo 'it broke: bad-marker' >&2; exit 3") -> str:
    code = {"url": p.url, "commit": p.sha}
    return registry(
        tagged("alpha", ["attention"], **code, command="echo alpha-ok"),
        tagged("beta", ["attention", "vision"], **code, command=bad_command),
        tagged("gamma", ["vision"], section="Other", **code, command="echo gamma-ok"),
        tagged("delta", ["attention"], **code, command="echo delta-ok"),
    )


def checked_ids(out: str) -> set[str]:
    return {m["id"] for m in result_lines(out)}


def test_selection_options_choose_entries_and_unknown_names_list_the_known(ws: Workspace, project: Project) -> None:
    ws.write(four(project))
    done = ws.run("check", "--tag", "attention", "--exclude", "delta", "-j", "2")
    assert done.code == 1, done.err  # beta fails
    assert checked_ids(done.out) == {"alpha", "beta"}

    assert checked_ids(ws.run("check", "--section", "other").out) == {"gamma"}
    # --failed: only what failed in its last recorded run (gamma passed, delta never ran).
    again = ws.run("check", "--failed")
    assert checked_ids(again.out) == {"beta"}
    # Ids and filters together: the filters narrow the ids.
    assert checked_ids(ws.run("check", "alpha", "gamma", "--tag", "vision").out) == {"gamma"}

    for command in ("check", "fetch", "setup", "list"):
        bad = ws.run(command, "--tag", "atention")
        assert bad.code == 2, (command, bad.err)
        assert "no tag 'atention'" in bad.err and "did you mean 'attention'" in bad.err
        assert "known tags: attention, vision" in bad.err
        assert "Traceback" not in bad.err
    bad = ws.run("fetch", "--section", "Nope")
    assert bad.code == 2 and "known sections: Other, Tests" in bad.err
    assert ws.run("check", "--exclude", "nosuch", "--all").code == 2


def test_log_shows_stage_status_paths_and_the_failing_tail(ws: Workspace, project: Project) -> None:
    noisy = "for i in $(seq 1 100); do echo line-$i; done; echo 'it broke: bad-marker' >&2; exit 3"
    ws.write(four(project, bad_command=noisy))
    assert ws.run("check", "alpha", "beta").code == 1

    done = ws.run("log", "beta")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].startswith("beta: failed (smoke) at smoke in run 1, ")
    assert lines[1] == "note: it broke: bad-marker"
    stage_rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert stage_rows["fetch"][1] == "ok" and stage_rows["smoke"][1] == "failed"
    smoke_log = stage_rows["smoke"][2]
    assert smoke_log.startswith(str(ws.cache)) and smoke_log.endswith("/smoke.log")
    assert "--- last 40 of 101 lines of " + smoke_log in done.out
    assert lines[-1] == "it broke: bad-marker" and "line-61\n" not in done.out and "line-62\n" in done.out
    assert "\x1b[" not in done.out

    whole = ws.run("log", "beta", "--all")
    assert "line-1\n" in whole.out and "(101 lines)" in whole.out
    fetch_log = ws.run("log", "beta", "--stage", "fetch")
    assert f"--- {smoke_log.replace('smoke.log', 'fetch.log')}" in fetch_log.out

    # A passed entry: its logs and the last stage's log; an older run by number.
    assert ws.run("check", "beta", "--exclude", "alpha").code == 1
    assert ws.run("log", "beta", "--run", "1").out.splitlines()[0].startswith("beta: failed (smoke) at smoke in run 1")
    assert ws.run("log", "beta").out.splitlines()[0].startswith("beta: failed (smoke) at smoke in run 2")
    missing = ws.run("log", "delta")
    assert missing.code == 2 and "delta: no recorded run yet" in missing.err
    assert ws.run("log", "beta", "--stage", "nope").code == 2
    shown = ws.run("show", "beta")
    assert f"logs: {smoke_log.rsplit('/', 1)[0]}" in shown.out

    status = json.loads(ws.run("status", "--json").out)
    by_id = {row["id"]: row for row in status}
    assert set(by_id["beta"]) == {"id", "full_id", "status", "level", "since", "runs", "change", "last_run"}
    assert (by_id["beta"]["status"], by_id["beta"]["runs"], by_id["beta"]["last_run"]["run"]) == ("failed", 2, 2)
    assert by_id["delta"]["status"] is None and by_id["delta"]["runs"] == 0
    runs = json.loads(ws.run("history", "beta", "--json").out)
    assert runs["full_id"] == "beta/main" and [r["run"] for r in runs["runs"]] == [2, 1]
    assert set(runs["runs"][0]) == {"status", "level", "stage", "note", "at", "run", "duration", "commit", "env_key",
                                    "log_path"}
    assert runs["runs"][0]["commit"] == project.sha and runs["runs"][0]["log_path"].endswith("smoke.log")
    sizes = json.loads(ws.run("cache", "--json").out)
    assert sizes["root"] == str(ws.cache) and set(sizes["sizes"]) >= {"repos", "checkouts", "envs", "logs"}
    assert sizes["total"] == sum(sizes["sizes"].values()) and sizes["sizes"]["repos"] > 0


def test_validate_json_lists_errors_and_warnings(ws: Workspace) -> None:
    from tests.registry_samples import VALID

    ws.write(VALID)
    good = ws.run("validate", "--json")
    assert good.code == 0, good.err
    assert json.loads(good.out) == {"registry": str(ws.registry), "valid": True, "papers": 2, "implementations": 2,
                                    "errors": [], "warnings": []}
    ws.write(VALID.replace("year = 2020\narxiv = \"2004.05150\"", "yeer = 2020\narxiv = \"2004.05150\""))
    bad = ws.run("validate", "--json")
    data = json.loads(bad.out)
    assert bad.code == 2 and data["valid"] is False and data["papers"] is None
    assert any("papers.longformer.yeer: unknown key 'yeer'" in line for line in data["errors"])
    ws.write("format = 1\n[papers\n")
    assert json.loads(ws.run("validate", "--json").out)["errors"][0].startswith(f"{ws.registry}:2:")


def test_doctor_reports_each_check_and_exits_1_when_git_is_missing(ws: Workspace, project: Project, tmp_path,
                                                                    monkeypatch) -> None:
    closed = f"git://127.0.0.2:{free_port()}/nothing"  # a host that refuses connections
    ws.write(registry(paper("here", url=project.url, commit=project.sha, command="true"),
                      paper("there", url=closed, commit=project.sha, command="true")))
    done = ws.run("doctor")
    assert done.code == 0, done.out + done.err
    lines = done.out.splitlines()
    statuses = {line.split()[1]: line.split()[0] for line in lines}
    assert statuses["git"] == "ok" and statuses["uv"] == "ok" and statuses["python"] == "ok"
    assert statuses["cache"] == "ok" and statuses["disk"] == "ok" and statuses["gpu"] == "warning"
    host_lines = [line for line in lines if " host " in f" {line}"]
    assert any(line.startswith("ok") and "host 127.0.0.1:" in line for line in host_lines), host_lines
    refused = [line for line in host_lines if "127.0.0.2" in line]
    assert refused and refused[0].startswith("warning") and "next: " in refused[0] and "--mirror" in refused[0]

    report = json.loads(ws.run("doctor", "--json").out)
    assert report["ok"] is True
    assert all(set(c) == {"name", "status", "detail", "next"} for c in report["checks"])
    assert {c["status"] for c in report["checks"]} <= {"ok", "warning", "missing"}

    mirror = ws.run("doctor", "--mirror", str(tmp_path / "no-mirror"))
    assert mirror.code == 1 and any(l.startswith("missing  mirror") for l in mirror.out.splitlines())

    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    missing = ws.run("doctor", "--json")
    assert missing.code == 1
    git_check = next(c for c in json.loads(missing.out)["checks"] if c["name"] == "git")
    assert git_check["status"] == "missing" and "install git" in git_check["next"]


def test_changed_selects_entries_whose_spec_changed_or_that_never_ran(ws: Workspace, project: Project) -> None:
    ws.write(four(project))
    assert checked_ids(ws.run("check", "--changed", "--exclude", "delta").out) == {"alpha", "beta", "gamma"}
    assert checked_ids(ws.run("check", "--changed").out) == {"delta"}  # never ran
    assert ws.run("check", "--changed").out.splitlines()[-1] == "nothing to check"
    # A pull request edits one smoke test and a description: only the smoke test counts.
    text = four(project).replace("echo gamma-ok", "echo gamma-ok-2").replace(
        'title = "Paper alpha"', 'title = "Paper alpha, retitled"')
    ws.write(text)
    assert checked_ids(ws.run("check", "--changed").out) == {"gamma"}
    # A passed entry's logs are recorded too.
    shown = ws.run("log", "gamma")
    assert shown.out.splitlines()[0].startswith("gamma: passed (smoke) in run ")
    assert "gamma-ok-2" in shown.out and " smoke  ok " in shown.out


def tree_state(root) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time: what a dry run must not change."""
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")} if root.exists() else {}


def test_dry_run_prints_the_plan_and_touches_neither_network_nor_cache(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(
        paper("ok", **code, command="echo ok"),
        paper("bad", **code, command="exit 3"),
        paper("gpu", **code, command="true", gpu=True),
        paper("stat", **code, static="true"),
        paper("nocode", no_code="none published"),
    ))
    cold = ws.run("check", "--all", "--dry-run")
    assert cold.code == 0, cold.err
    plan = dict(line.split(None, 1) for line in cold.out.splitlines())
    assert f"code: fetch {project.sha[:12]} from {project.url}; env: build (uv, Python 3." in plan["ok"]
    assert plan["ok"].endswith("run smoke (command 'echo ok', timeout 600 s)")
    assert plan["gpu"].startswith("skipped: needs a GPU")
    assert "run static (needs a GPU" not in plan["stat"] and "run static (no smoke test; a static check only)" in plan["stat"]
    assert plan["nocode"] == "skipped: no code: none published"
    assert "nothing was fetched, built or run" in cold.err
    assert not ws.cache.exists()  # not even the lock file or the registry's memo

    assert ws.run("check", "ok", "bad").code == 1
    before = tree_state(ws.cache)
    warm = ws.run("check", "--failed", "--dry-run")
    assert [line.split()[0] for line in warm.out.splitlines()] == ["bad"]
    assert warm.out.startswith("bad  code cached (") and "; env ready (" in warm.out and "run smoke (command 'exit 3'" in warm.out
    fetch = ws.run("fetch", "--all", "--dry-run").out
    assert "ok      code cached" in fetch and "env" not in fetch
    assert "env ready" in ws.run("setup", "ok", "--dry-run").out
    assert tree_state(ws.cache) == before


def test_dry_run_of_a_shard_plans_only_that_shard(ws: Workspace, project: Project) -> None:
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(*(paper(f"p{i}", **code, command="true") for i in range(4))))
    shards = [ws.run("check", "--shard", f"{k}/2", "--dry-run").out.split() for k in (1, 2)]
    firsts = [{w for w in words if w.startswith("p") and w[1:].isdigit()} for words in shards]
    assert firsts[0] | firsts[1] == {"p0", "p1", "p2", "p3"} and not firsts[0] & firsts[1]


def test_a_damaged_server_is_named_by_its_own_line_and_not_retried(ws: Workspace, repos, git_daemon) -> None:  # noqa: ANN001
    sha = repos.create("broken", {"a.txt": "kept\n", "b.txt": "lost on the server\n"})
    blob = subprocess.run(["git", "rev-parse", f"{sha}:b.txt"], cwd=repos.work_tree("broken"), check=True,
                          capture_output=True, text=True).stdout.strip()
    (repos.bare / "broken.git" / "objects" / blob[:2] / blob[2:]).unlink()  # pushed objects stay loose
    ws.write(registry(paper("broken", url=git_daemon.url("broken"), commit=sha, command="true")))
    done = ws.run("check", "broken")
    assert done.code == 1
    record = json.loads(ws.run("status", "--json").out)[0]["last_run"]
    assert record["status"] == "fetch-error"
    assert f"remote: fatal: unable to read {blob}" in record["note"] and "not retried" in record["note"]
    assert "bad pack header" not in record["note"]
    fetch_log = ws.run("log", "broken").out
    assert fetch_log.count(f"remote: fatal: unable to read {blob}") == 2  # once in the note, once in the log: one try


def test_authoring_a_smoke_test_without_editing_the_registry(ws: Workspace, project: Project, tmp_path) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    text = registry(paper("model", **code, command="echo loading; echo 'OK (2, 4)'", expect=r"OK \(2, 8\)"),
                    paper("other", **code, command="true"))
    ws.write(text)
    failed = ws.run("check", "model")
    assert failed.code == 1
    note = json.loads(ws.run("status", "--json").out)[0]["last_run"]["note"]
    assert note == (r"output did not match expect 'OK \(2, 8\)' (a regular expression: put a backslash before "
                    ". ( ) [ ] + * ? to match one as it is); its last lines: loading | OK (2, 4)")

    tried = ws.run("check", "model", "--smoke-command", "echo 'OK (2, 8)'")
    assert tried.code == 0, tried.out
    script = tmp_path / "try.py"
    script.write_text("print('OK (2, 8)')\n")
    assert ws.run("check", "model", "--smoke-script", str(script)).code == 0
    script.write_text("raise SystemExit('no module named foo')\n")
    broken = ws.run("check", "model", "--smoke-script", str(script))
    assert broken.code == 1 and "no module named foo" in ws.run("log", "model").out
    assert ws.registry.read_text() == text  # the registry was never touched
    # What ran last is not what the registry says, so "model" counts as changed ("other" never ran).
    planned = [line.split()[0] for line in ws.run("check", "--changed", "--dry-run").out.splitlines()]
    assert planned == ["model", "other"]

    for args in (("model", "other"), ("--all",)):
        wrong = ws.run("check", *args, "--smoke-command", "true")
        assert wrong.code == 2 and "on one entry with code" in wrong.err
    assert ws.run("check", "model", "--smoke-script", str(tmp_path / "nope.py")).code == 2


def test_a_backslash_in_a_double_quoted_string_suggests_a_literal_string(ws: Workspace) -> None:
    ws.write('format = 1\n\n[papers.x]\ntitle = "X"\nexpect = "OK \\(1, 4\\)"\n')
    done = ws.run("validate")
    assert done.code == 2
    assert done.err.startswith(f"error: {ws.registry}:5:16: invalid TOML: Unescaped '\\' in a string; ")
    assert "single-quoted literal string" in done.err and "expect = 'OK \\(1, 4\\)'" in done.err


def run_in_terminal(argv: list[str], env: dict[str, str], deadline_s: float = 300) -> str:
    """Run ``argv`` with a real pseudo-terminal as stdin, stdout and stderr; return all it drew."""
    import os
    import pty
    import time

    master, slave = pty.openpty()
    child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        child.wait(timeout=30)
    return b"".join(chunks).decode(errors="replace")


def test_live_view_shows_stage_time_queue_elapsed_and_estimate_and_its_bar_under_no_color(
        ws: Workspace, project: Project) -> None:
    import os
    import re

    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(*(paper(f"slow{i}", **code, command="sleep 1") for i in range(3))))
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "150"}
    raw = run_in_terminal(ws.argv("check", "--all", "-j", "1"), env)
    assert not re.search(r"\x1b\[(3|9)\dm", raw)  # no colour at all
    first = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)  # styles and cursor moves out of the way
    assert "queued (2): " in first and "queued (1): " in first
    assert re.search(r"slow\d\s+smoke\s+\d\.\ds", first)  # the time in the current stage
    assert re.search(r"check \[#*\.+\] 0/3 elapsed \d+:\d\d", first), first[-2000:]  # a bar made of characters
    assert "left" not in first  # no recorded durations yet: no estimate
    second = run_in_terminal(ws.argv("check", "--all", "-j", "1"), env)
    assert re.search(r"elapsed \d+:\d\d, about \d+:\d\d left", second)  # any times: a loaded machine is slow


def test_quiet_prints_only_failures_and_color_follows_the_option_and_force_color(ws: Workspace, project: Project,
                                                                                   monkeypatch) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(paper("good", **code, command="true"), paper("bad", **code, command="exit 3")))
    quiet = ws.run("-q", "check", "--all")
    assert quiet.code == 1
    assert [line.split()[0] for line in quiet.out.splitlines() if line.strip()][:3] == ["bad", "ID", "bad"]
    assert "good" not in quiet.out and "1 passed, 1 failed" in quiet.out
    assert "\x1b[" not in quiet.out

    always = ws.run("--color", "always", "check", "--all")
    assert "\x1b[" in always.out  # colour although the output is not a terminal (a CI log)
    assert "\x1b[" not in ws.run("--color", "never", "check", "--all").out
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in ws.run("check", "--all").out
    assert "\x1b[" not in ws.run("--color", "never", "check", "--all").out
    assert ws.run("--color", "sometimes", "list").code == 2


def test_settings_file_beside_the_registry_then_environment_then_flags(ws: Workspace, project: Project,
                                                                        monkeypatch) -> None:  # noqa: ANN001
    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    # `slow` ends only once `go` exists (smoke tests read the cache): it times out before, passes after,
    # whatever the machine's load; 3 s timeouts leave `bad` time to fail on its own.
    go = ws.cache / "go"
    ws.write(registry(paper("slow", **code, command=f"while [ ! -e {go} ]; do sleep 0.05; done; echo done",
                            expect="done"),
                      paper("bad", **code, command="exit 3")))
    (ws.root / "awrepro.toml").write_text('timeout = 3\nfail_on = "never"\njobs = 2\n'
                                          'db = "state/results.db"\njson = "reports/check.json"\n')
    done = ws.run("check", "--all")
    assert done.code == 0, done.out  # fail_on = "never" from the file
    report = json.loads((ws.root / "reports" / "check.json").read_text())
    assert {r["id"]: r["status"] for r in report["results"]} == {"slow": "timeout", "bad": "failed"}
    assert (ws.root / "state" / "results.db").is_file() and not (ws.cache / "results.db").exists()
    assert json.loads(ws.run("status", "--json").out)[0]["status"] == "timeout"  # the file's db, for status too

    go.touch()
    monkeypatch.setenv("AWREPRO_TIMEOUT", "300")  # the environment beats the file
    monkeypatch.setenv("AWREPRO_FAIL_ON", "any")
    assert ws.run("check", "slow").code == 0
    assert ws.run("check", "--all").code == 1
    go.unlink()
    assert ws.run("check", "slow", "--timeout", "3", "--fail-on", "never").code == 0  # flags beat both
    assert json.loads(ws.run("history", "slow", "--json").out)["runs"][0]["status"] == "timeout"

    (ws.root / "awrepro.toml").write_text("jobz = 2\n")
    bad = ws.run("check", "--all")
    assert bad.code == 2 and f"{ws.root / 'awrepro.toml'}: jobz: unknown setting (did you mean 'jobs'?)" in bad.err
    (ws.root / "awrepro.toml").write_text('jobs = "two"\n')
    assert "jobs: must be a whole number" in ws.run("check", "--all").err


def test_shell_completion_offers_entry_ids_tags_and_sections_from_the_registry(ws: Workspace, project: Project) -> None:
    import os

    code: dict[str, Any] = {"url": project.url, "commit": project.sha}
    ws.write(registry(tagged("alpha", ["attention"], **code, command="true"),
                      tagged("alpine", ["vision"], section="Other", **code, command="true")))
    ws.run("list")  # the registry's memo lands in the cache, as after any command

    def complete(*words: str) -> list[str]:
        line = " ".join(["awrepro", "--registry", str(ws.registry), "--cache-dir", str(ws.cache), *words])
        env = {**os.environ, "_AWREPRO_COMPLETE": "complete_bash", "COMP_WORDS": line,
               "COMP_CWORD": str(len(line.split()) - (0 if line.endswith(" ") else 1))}
        done = subprocess.run(ws.argv()[:3], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("check", "al") == ["alpha", "alpine"]
    assert complete("log", "alpi") == ["alpine"]
    assert complete("check", "--exclude", "alph") == ["alpha"]
    assert complete("check", "--tag", "vi") == ["vision"]
    assert complete("list", "--section", "Ot") == ["Other"]
    script = subprocess.run([*ws.argv()[:3], "--show-completion", "bash"], capture_output=True, text=True,
                            env={**os.environ, "SHELL": "/bin/bash"}, timeout=60)
    assert "_AWREPRO_COMPLETE=complete_bash" in script.stdout
