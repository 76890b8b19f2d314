"""Third-party output never breaks a report or a terminal: smoke tests that print ANSI escapes, BEL,
NUL, bidi overrides, `<tag>`, `&` and invalid UTF-8, and that fail, time out or get cancelled."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from tests.commands.checkkit import (
    Workspace,
    paper,
    pid_reports,  # noqa: F401 (fixture)
    registry,
    statuses,
    table_row,
    uv_cache,  # noqa: F401 (fixture)
    wait_for,
    ws,  # noqa: F401 (fixture)
)

NOISY = r'''
import sys, time
payload = (b"\x1b[41mRED\x1b[0m \x1b]0;pwned\x07 bell\x07 nul\x00 <class 'X'> & <b>bold</b> "
           b"bad\xff\xfeutf8 \xe2\x80\xaertl | pipe")
sys.stdout.buffer.write(b"progress 10%\rprogress 100%\n")
sys.stderr.buffer.write(b"error: " + payload + b"\n")
sys.stderr.flush()
sys.stdout.flush()
if sys.argv[1] == "fail":
    sys.exit(1)
if sys.argv[1] == "hang":
    time.sleep(300)
if sys.argv[1] == "wait":  # reports to the test (tests.commands.checkkit.PidReports), then waits
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect("\0" + sys.argv[2])
    time.sleep(300)
'''
# What a terminal or a strict parser must never receive raw.
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")
LONG_ID = "funnel-transformer-with-a-long-paper-id"


@pytest.fixture
def noisy(ws: Workspace, repos, git_daemon) -> dict[str, Any]:  # noqa: ANN001
    sha = repos.create("noisy", {"noisy.py": NOISY})
    return {"url": git_daemon.url("noisy"), "commit": sha}


def noisy_registry(code: dict[str, Any], ready: str) -> str:
    return registry(
        paper("ok", **code, command="python noisy.py pass"),
        paper("bad", **code, command="python noisy.py fail"),
        paper("hang", **code, command="python noisy.py hang", timeout=1),
        paper(LONG_ID, **code, command="python noisy.py fail"),
        paper("wait", **code, command=f"python noisy.py wait {ready}", timeout=600),
    )


def assert_strict_junit(path: Path) -> ET.Element:
    etree.parse(str(path), etree.XMLParser(recover=False))  # raises on any character XML 1.0 forbids
    return ET.parse(path).getroot()


def sub(element: ET.Element, tag: str) -> ET.Element:
    found = element.find(tag)
    assert found is not None, (element.tag, tag)
    return found


def test_every_report_and_output_is_sanitised(ws: Workspace, noisy: dict[str, Any]) -> None:
    ws.write(noisy_registry(noisy, "unused"))
    json_path, junit_path, md_path = ws.root / "r.json", ws.root / "r.xml", ws.root / "r.md"
    done = ws.run("check", "ok", "bad", "hang", LONG_ID, "-j", "4", "--json", str(json_path), "--junit",
                  str(junit_path), "--markdown", str(md_path))
    assert done.code == 1, done.err

    # Plain output: no control codes at all; what came from outside is shown escaped.
    assert not RAW_CONTROLS.search(done.out + done.err), repr(done.out + done.err)
    note = table_row(done.out, "bad")[-1]
    assert note.startswith(r"error: \x1b[41mRED\x1b[0m \x1b]0;pwned\x07 bell\x07 nul\x00 <class 'X'> & ")
    assert "\ufffd" in note and r"\u202ertl" in note
    assert not any(line != line.rstrip() for line in done.out.splitlines())  # no trailing padding
    # Every failing entry's full log path on a line of its own.
    logs = {line.split()[0]: line.split()[1] for line in done.out.split("Logs:\n", 1)[1].splitlines()}
    assert set(logs) == {"bad", "hang", LONG_ID}
    assert all(Path(path).is_file() and path.endswith("/smoke.log") for path in logs.values())

    # JUnit: a strict parser accepts it; the message and the log tail arrive readable.
    suite = assert_strict_junit(junit_path)
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = sub(cases["bad"], "failure")
    assert "<class 'X'> & <b>bold</b>" in failure.get("message", "") and r"\x07" in failure.get("message", "")
    tail = failure.text or ""
    assert "error: RED" in tail and "<class 'X'>" in tail  # colour sequences dropped from logs
    assert "progress 100%" in tail and "progress 10%" not in tail  # a line as a terminal last showed it
    assert sub(cases["hang"], "failure").get("type") == "timeout"

    # JSON: valid UTF-8 (strictly), and the notes as printable text.
    report = json.loads(json_path.read_bytes().decode("utf-8", errors="strict"))
    notes = {r["id"]: r["note"] for r in report["results"]}
    assert not RAW_CONTROLS.search(notes["bad"]) and r"\x00" in notes["bad"]

    # Markdown: HTML-escaped, failures first, each failure's log tail in a collapsed block.
    text = md_path.read_text(encoding="utf-8")
    assert not RAW_CONTROLS.search(text.replace("\n", ""))
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["bad", "hang", LONG_ID, "ok"]
    assert "&lt;class 'X'&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rows[0] and "\\| pipe" in rows[0]
    assert "<class" not in text and "<b>" not in text
    assert text.count("<details>") == 3 and text.count("</details>") == 3
    assert "<pre>\nerror: RED" in text and "progress 100%\n</pre>" in text

    # History and every command that shows it.
    for command in (("status",), ("history", "bad"), ("show", "bad"), ("list",)):
        shown = ws.run(*command)
        assert shown.code == 0, shown.err
        assert not RAW_CONTROLS.search(shown.out + shown.err), (command, shown.out)
    assert r"\x1b[41mRED" in ws.run("history", "bad").out


def test_a_terminal_shows_escapes_and_whole_ids_and_statuses(ws: Workspace, noisy: dict[str, Any]) -> None:
    ws.write(noisy_registry(noisy, "unused"))
    ws.run("check", "ok")  # builds the environment outside the terminal run
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "LINES": "40", "TERM": "xterm-256color"}
    child = subprocess.Popen(ws.argv("check", "ok", "bad", LONG_ID, "-j", "3"), stdin=follower, stdout=follower,
                             stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert child.wait(timeout=60) == 1
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    # Nothing the smoke test printed reached the terminal as itself.
    for sequence in ("\x1b[41m", "\x1b]0;pwned", "\x07", "\x00", "\u202e"):
        assert sequence not in raw, sequence
    assert r"\x1b[41mRED" in raw
    # Without awrepro's own colours and cursor moves: whole ids and statuses, cut notes.
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r\n", "\n").replace("\r", "\n")
    rows = [line for line in plain.splitlines() if line.startswith(f"{LONG_ID} ") and "…" in line]
    assert rows, plain
    assert re.match(rf"{LONG_ID}\s+failed\s+smoke\s+smoke\s+\d+\.\ds\s+e\S*…$", rows[-1]), rows[-1]
    table = plain[plain.rindex("ID "):plain.rindex("Logs:")].splitlines()
    assert table and all(len(line) <= 80 for line in table), table
    assert re.match(r"ID\s+Status\s+Level\s+Stage\s+Duration\s+N\S*$", table[0].rstrip()), table


def test_a_cancelled_run_of_noisy_entries_is_in_every_report(ws: Workspace, noisy: dict[str, Any],
                                                             pid_reports) -> None:  # noqa: ANN001
    ready = pid_reports()  # a smoke test writes nowhere outside (the sandbox): it reports over a socket
    ws.write(noisy_registry(noisy, ready.name))
    json_path, junit_path, md_path, out_path = (ws.root / name for name in ("r.json", "r.xml", "r.md", "out.txt"))
    with out_path.open("w") as out:
        child = subprocess.Popen(ws.argv("check", "wait", "ok", "bad", "-j", "3", "--json", str(json_path),
                                         "--junit", str(junit_path), "--markdown", str(md_path)),
                                 stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        ready.wait(1)  # the waiting smoke test started
        wait_for(lambda: "ok  passed" in out_path.read_text() and "bad  failed" in out_path.read_text(),
                 "the other entries to finish")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    output = out_path.read_text()
    assert not RAW_CONTROLS.search(output + err), repr(output + err)
    assert table_row(output, "wait")[:2] == ["wait", "interrupted"]
    suite = assert_strict_junit(junit_path)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    waited = sub(next(case for case in suite.iter("testcase") if case.get("name") == "wait"), "error")
    assert waited.get("type") == "interrupted" and "<class 'X'>" in (waited.text or "")  # its log so far
    assert statuses(json.loads(json_path.read_text())) == {"wait": "interrupted", "ok": "passed", "bad": "failed"}
    text = md_path.read_text()
    assert [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")] == ["wait", "bad", "ok"]
    assert "1 passed, 1 failed, 1 interrupted" in text
