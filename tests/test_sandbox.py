"""Third-party code runs in the sandbox: no survivors, no files of the caller's, a read-only cache, no network.

A smoke test's escapee (double fork, a session of its own, SIGTERM ignored) reports to the test
through ``PidReports`` (an abstract Unix socket: its pid as the test sees it, and when it died);
no process is looked up by name.
Each case runs with bubblewrap and in the fallback (``AWREPRO_SANDBOX=fallback``).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.commands.checkkit import (  # noqa: F401 (fixtures)
    Workspace,
    load_json,
    paper,
    registry,
    uv_cache,
    ws,
)
from tests.gitfixtures import HttpServer, RepoFactory
from tests.processes import PidReports, alive

pytestmark = pytest.mark.slow

ESCAPEE = '''\
import os, signal, socket, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        s = socket.socket(socket.AF_UNIX)
        s.connect("\\0" + sys.argv[1])
        while True:
            time.sleep(60)
    os._exit(0)
time.sleep(600)
'''
MODES = ["bwrap", "fallback"]


@pytest.fixture
def witness(pid_reports) -> PidReports:  # noqa: ANN001
    return pid_reports()


@pytest.fixture
def escapee_repo(repos: RepoFactory, git_daemon) -> tuple[str, str]:  # noqa: ANN001
    sha = repos.create("escapee", {"escapee.py": ESCAPEE, "pkg/__init__.py": "VALUE = 1\n"})
    return git_daemon.url("escapee"), sha


def _mode_env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AWREPRO_SANDBOX", None)
    if mode == "fallback":
        env["AWREPRO_SANDBOX"] = "fallback"
    return env


def _start(ws: Workspace, mode: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(ws.argv("check", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=_mode_env(mode))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["timeout", "ctrl-c"])
def test_an_escaped_grandchild_dies_with_its_smoke_test(ws: Workspace, escapee_repo: tuple[str, str],
                                                          witness: PidReports, mode: str, how: str) -> None:
    url, sha = escapee_repo
    ws.write(registry(paper("demo", url=url, commit=sha, command=f"python escapee.py {witness.name}",
                            timeout=10 if how == "timeout" else 600)))  # 10 s: time to report when loaded
    check = _start(ws, mode, "demo", "--json", str(ws.root / "report.json"))
    try:
        [pid] = witness.wait(1)
        assert how == "timeout" or alive(pid)  # (a timeout may already have come)
        if how == "ctrl-c":
            check.send_signal(signal.SIGINT)
        out, err = check.communicate(timeout=60)
    finally:
        check.kill()
        check.wait()
    assert check.returncode == (1 if how == "timeout" else 130), out + err
    assert witness.gone(), f"pid {pid} outlived its smoke test ({mode}, {how})"
    assert not alive(pid)
    if how == "timeout":
        assert load_json(ws.root / "report.json")["results"][0]["status"] == "timeout"
    warned = "sandbox: " in err and "no PID namespace" in err
    assert warned == (mode == "fallback"), err
    assert err.count("sandbox: ") <= 1  # said once


def test_sigkilled_awrepro_takes_the_smoke_tree_with_it(ws: Workspace, escapee_repo: tuple[str, str],
                                                        witness: PidReports) -> None:
    url, sha = escapee_repo
    ws.write(registry(paper("demo", url=url, commit=sha, command=f"python escapee.py {witness.name}", timeout=600)))
    check = _start(ws, "bwrap", "demo")
    try:
        [pid] = witness.wait(1)
        check.send_signal(signal.SIGKILL)
        check.wait(timeout=30)
    finally:
        check.kill()
        check.wait()
    assert witness.gone(), f"pid {pid} outlived awrepro killed with SIGKILL"


def test_without_bwrap_the_next_run_ends_what_a_killed_awrepro_left(ws: Workspace, escapee_repo: tuple[str, str],
                                                                    witness: PidReports) -> None:
    url, sha = escapee_repo
    ws.write(registry(paper("demo", url=url, commit=sha, command=f"python escapee.py {witness.name}", timeout=600),
                      paper("quick", url=url, commit=sha, command="true")))
    check = _start(ws, "fallback", "demo")
    try:
        [pid] = witness.wait(1)
        check.send_signal(signal.SIGKILL)
        check.wait(timeout=30)
    finally:
        check.kill()
        check.wait()
    assert not witness.gone(timeout=0.5)  # without a PID namespace it lives on, for now
    again = subprocess.run(ws.argv("check", "quick"), capture_output=True, text=True, env=_mode_env("fallback"),
                           timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert witness.gone(), f"pid {pid} of a killed run was not ended by the next one"


@pytest.mark.parametrize("mode", MODES)
def test_a_smoke_test_sees_none_of_the_callers_files(ws: Workspace, escapee_repo: tuple[str, str], mode: str) -> None:
    home = Path(os.environ["HOME"])
    (home / ".netrc").write_text("machine example.com login me password canary-netrc-1c9e\n")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("canary-ssh-7a2f\n")
    url, sha = escapee_repo
    command = ('echo "HOME=$HOME"; cat ~/.netrc ~/.ssh/id_ed25519; echo ABSOLUTE; '
               f"cat {home}/.netrc {home}/.ssh/id_ed25519; echo done")
    ws.write(registry(paper("demo", url=url, commit=sha, command=command, expect="done")))
    done = subprocess.run(ws.argv("check", "demo", "--json", str(ws.root / "r.json")), capture_output=True, text=True,
                          env=_mode_env(mode), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    [log] = ws.cache.glob("logs/*/demo--main/smoke.log")
    text = log.read_text()
    assert "canary-netrc" not in text.split("ABSOLUTE")[0]  # ~ is a scratch HOME in both modes
    own_home = text.split("HOME=", 1)[1].splitlines()[0]
    assert own_home != str(home) and own_home.startswith(str(ws.cache))
    if mode == "bwrap":  # the caller's home itself is hidden too
        assert "canary" not in text, text


@pytest.mark.parametrize("mode", MODES)
def test_a_smoke_test_cannot_write_into_the_cached_checkout(ws: Workspace, escapee_repo: tuple[str, str],
                                                              mode: str) -> None:
    url, sha = escapee_repo
    ws.write(registry(paper("demo", url=url, commit=sha, command="python -c 'import pkg; print(pkg.VALUE)'",
                            expect="1"),
                      paper("writer", url=url, commit=sha, command="echo x > written.txt && echo wrote")))
    done = subprocess.run(ws.argv("check", "demo", "writer", "--json", str(ws.root / "r.json")), capture_output=True,
                          text=True, env=_mode_env(mode), timeout=120)
    results = {r["id"]: r for r in load_json(ws.root / "r.json")["results"]}
    assert results["demo"]["status"] == "passed", done.stdout + done.stderr
    [checkout] = ws.cache.glob("checkouts/*/escapee")
    if mode == "bwrap":  # the fallback has no read-only filesystem (README: threat model)
        assert list(checkout.rglob("__pycache__")) == []  # no bytecode left in the shared checkout
        assert results["writer"]["status"] == "failed"
        assert "Read-only file system" in results["writer"]["note"]
        assert not (checkout / "written.txt").exists()


def test_the_network_is_cut_when_the_entry_or_the_run_asks(ws: Workspace, escapee_repo: tuple[str, str],
                                                           tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hello from the host\n")
    server = HttpServer(served)
    server.start()
    try:
        url, sha = escapee_repo
        fetch = f"python -c \"import urllib.request as u; print(u.urlopen('{server.url('hello.txt')}').read().decode())\""
        resolve = "python -c \"import socket; socket.getaddrinfo('pypi.org', 443)\""
        ws.write(registry(paper("open", url=url, commit=sha, command=fetch, expect="hello from the host"),
                          paper("cut", url=url, commit=sha, command=resolve)
                          .replace("[papers.cut.impl.main.smoke]", "[papers.cut.impl.main.smoke]\nnetwork = false")))
        report = ws.root / "r.json"
        first = ws.run("check", "open", "cut", "--json", str(report))
        results = {r["id"]: r for r in load_json(report)["results"]}
        assert results["open"]["status"] == "passed", first.out + first.err
        assert results["cut"]["status"] == "failed"
        assert results["cut"]["note"].startswith("tried the network, which is cut for this smoke test: "), results
        second = ws.run("check", "open", "--no-network", "--json", str(report))
        assert second.code == 1
        [result] = load_json(report)["results"]
        assert result["status"] == "failed" and "tried the network" in result["note"], result
    finally:
        server.stop()


def test_show_and_doctor_say_which_sandbox_applies(ws: Workspace, escapee_repo: tuple[str, str]) -> None:
    url, sha = escapee_repo
    ws.write(registry(paper("demo", url=url, commit=sha, command="true")))
    for mode, expected, level in (("bwrap", "bubblewrap (", "ok"), ("fallback", "fallback (AWREPRO_SANDBOX=fallback)", "warning")):
        done = subprocess.run(ws.argv("show", "demo"), capture_output=True, text=True, env=_mode_env(mode), timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].startswith(f"sandbox: {expected}"), done.stdout
        doctor = subprocess.run(ws.argv("doctor"), capture_output=True, text=True, env=_mode_env(mode), timeout=120)
        [line] = [line for line in doctor.stdout.splitlines() if line.split()[1:2] == ["sandbox"]]
        assert line.split()[0] == level and expected in line, doctor.stdout


def test_steps_build_in_a_copy_of_the_checkout_owned_by_their_environment(ws: Workspace,
                                                                          escapee_repo: tuple[str, str]) -> None:
    url, sha = escapee_repo

    def entry(pid: str, word: str) -> str:
        text = paper(pid, url=url, commit=sha, command="cat built.txt", expect=word, steps=[f"echo {word} > built.txt"])
        return text

    ws.write(registry(entry("one", "first-build"), entry("two", "second-build")))
    report = ws.root / "r.json"
    done = ws.run("check", "one", "two", "-j", "1", "--json", str(report))
    assert done.code == 0, done.out + done.err
    results = load_json(report)["results"]
    assert {r["status"] for r in results} == {"passed"}
    assert len({r["env_key"] for r in results}) == 2
    [checkout] = ws.cache.glob("checkouts/*/escapee")
    assert not (checkout / "built.txt").exists()  # the shared checkout holds no build product
    copies = sorted(p.read_text().strip() for p in ws.cache.glob("envs/*/awrepro-src/escapee/built.txt"))
    assert copies == ["first-build", "second-build"]



def test_a_program_installed_under_tmp_runs_in_the_sandbox(tmp_path: Path) -> None:
    """The sandbox gives /tmp a private tmpfs: a program installed there (uv in a virtual environment
    of a CI clone under /tmp) must still be visible, read-only, to the command that runs it."""
    from awrepro import process
    from awrepro.sandbox import Confinement, current_mode

    if not current_mode().contained:
        pytest.skip(f"no bubblewrap here: {current_mode().reason}")
    program = tmp_path / "prefix" / "bin" / "hello"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\necho hello from under /tmp\n")
    program.chmod(0o755)
    done = process.run([str(program)], sandbox=Confinement(scratch_home=tmp_path / "home"))
    assert done.ok, done.output
    assert "hello from under /tmp" in done.output
