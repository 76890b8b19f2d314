"""``awrepro.process.run``, the one place awrepro starts programs, used for real."""

from __future__ import annotations

import sys
from pathlib import Path

from awrepro import process
from tests.envs.conftest import pids_with, wait_until


def _sleeper(token: str) -> str:
    return f"{sys.executable} -c 'import time; time.sleep(300)' {token}"


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path, token: str) -> None:
    started = tmp_path / "started"
    script = f"{_sleeper(token)} & sh -c \"{_sleeper(token)}\" & touch {started}; echo begun; wait"

    done = process.run(["/bin/sh", "-c", script], timeout=1, log_path=tmp_path / "log")

    assert done.timed_out
    assert done.returncode is None
    assert not done.ok
    assert started.exists()
    assert "begun" in done.output
    assert wait_until(lambda: pids_with(token) == [], timeout=5), pids_with(token)


def test_children_left_behind_by_a_finished_command_are_ended(tmp_path: Path, token: str) -> None:
    started = tmp_path / "started"
    script = (f"sh -c \"touch {started}; exec {_sleeper(token)}\" & "
              f"while [ ! -e {started} ]; do sleep 0.05; done; echo parent done")
    done = process.run(["/bin/sh", "-c", script], timeout=60)

    assert done.ok and not done.timed_out
    assert done.output == "parent done\n"
    assert wait_until(lambda: pids_with(token) == [], timeout=5), pids_with(token)


def test_a_missing_program_is_exit_code_127_with_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "log"
    done = process.run(["awrepro-no-such-program", "--flag"], log_path=log)

    assert done.returncode == 127
    assert not done.timed_out
    assert done.output.startswith("cannot run awrepro-no-such-program: ")
    assert "No such file" in done.output
    assert done.output in log.read_text()


def test_an_unusable_cwd_is_exit_code_127(tmp_path: Path) -> None:
    done = process.run(["true"], cwd=tmp_path / "missing")
    assert done.returncode == 127
    assert done.output == f"cannot run in {tmp_path / 'missing'}: no such folder"


def test_output_and_exit_code_are_kept_and_the_log_is_appended(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "step.log"
    log.parent.mkdir()
    log.write_text("earlier\n")

    done = process.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 5"], log_path=log)

    assert done.returncode == 5
    assert done.output == "out\nerr\n"  # only this run's output, stderr joined in order
    assert log.read_text() == "earlier\nout\nerr\n"


def test_the_scrubbed_environment_keeps_only_the_allowlist() -> None:
    source = {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "GITHUB_TOKEN": "canary", "PIP_INDEX_URL": "x",
              "AWS_SECRET_ACCESS_KEY": "canary", "UV_CACHE_DIR": "/c"}
    assert process.scrubbed_environ(source=source) == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C"}
    install = process.scrubbed_environ(allow=process.INSTALL_ALLOWLIST, prefixes=process.INSTALL_PREFIXES,
                                       source=source, extra={"TMPDIR": "/t"})
    assert install == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C", "PIP_INDEX_URL": "x", "UV_CACHE_DIR": "/c",
                       "TMPDIR": "/t"}
