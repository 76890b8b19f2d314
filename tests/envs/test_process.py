"""``awrepro.process.run``, the one place awrepro starts programs, used for real."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from awrepro import process
from tests.processes import pid_sleeper


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path, pid_reports) -> None:  # noqa: ANN001
    ready = pid_reports()
    sleeper = pid_sleeper(ready, python=sys.executable)
    # 10 s: time for both sleepers to start and report on a loaded machine before the timeout.
    script = f"{sleeper} & sh -c {shlex.quote(sleeper)} & echo begun; wait"

    done = process.run(["/bin/sh", "-c", script], timeout=10, log_path=tmp_path / "log")

    assert done.timed_out
    assert done.returncode is None
    assert not done.ok
    assert "begun" in done.output
    ready.wait(2)  # both had started (their connections wait to be accepted) ...
    assert ready.gone()  # ... and both died: their connections ended


def test_children_left_behind_by_a_finished_command_are_ended(tmp_path: Path, pid_reports) -> None:  # noqa: ANN001
    ready = pid_reports()
    started = tmp_path / "started"
    script = (f"{pid_sleeper(ready, python=sys.executable, touch=str(started))} & "
              f"while [ ! -e {started} ]; do sleep 0.05; done; echo parent done")  # the child runs: end
    done = process.run(["/bin/sh", "-c", script], timeout=300)

    assert done.ok and not done.timed_out
    assert done.output == "parent done\n"
    ready.wait(1)
    assert ready.gone()


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
