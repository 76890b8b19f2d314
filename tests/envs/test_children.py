"""What a smoke test starts: killed with it on a timeout, unable to hang the runner, blind to secrets."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs.conftest import World
from tests.processes import pid_sleeper

pytestmark = pytest.mark.slow


def _check(world: World, registry: Path, report: Path, out: Path, *extra: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """``awrepro check`` in a process of its own, its output to a file (not a pipe a grandchild could hold)."""
    command = [sys.executable, "-m", "awrepro", *world.args(registry), "check", "--json", str(report), *extra, "demo"]
    with open(out, "wb") as handle:
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=out.parent, timeout=timeout)


def _smoke_log(world: World) -> str:
    [log] = world.cache.glob("logs/*/demo--main/smoke.log")
    return log.read_text()


def test_a_timed_out_smoke_test_leaves_no_process_behind(world: World, tmp_path: Path, pid_reports) -> None:  # noqa: ANN001
    ready = pid_reports()
    sleeper = pid_sleeper(ready)
    command = (f"{sleeper} & {sleeper} & "
               f"sh -c {shlex.quote(f'{sleeper} & {sleeper}; echo never')} & "  # a child with a grandchild
               f"sleep 300 & echo all-started; wait")
    # 10 s: time for the four sleepers to start and report on a loaded machine before the timeout.
    registry = world.registry({"demo": {"smoke": {"command": command, "timeout": 10}}})
    report, out = tmp_path / "report.json", tmp_path / "check.out"

    done = _check(world, registry, report, out, timeout=300)
    assert done.returncode == 1, out.read_text()
    assert "all-started" in _smoke_log(world)
    ready.wait(4)  # the children really were started (their connections wait to be accepted) ...
    [result] = json.loads(report.read_text())["results"]
    assert result["status"] == "timeout", result
    assert "timed out after 10 s" in result["note"]
    assert ready.gone()  # ... and all of them died with the smoke test: their connections ended


def test_a_detached_grandchild_holding_the_output_does_not_hang_the_runner(world: World, tmp_path: Path,
                                                                            pid_reports) -> None:  # noqa: ANN001
    # The smoke test waits until its grandchild is detached and running (else the group kill at its
    # end could come first), then ends, leaving the grandchild with the output file open.
    ready = pid_reports()
    sleeper = pid_sleeper(ready, touch="$TMPDIR/detached")
    command = (f"setsid sh -c {shlex.quote('exec ' + sleeper)} & "
               "while [ ! -e $TMPDIR/detached ]; do sleep 0.05; done; echo done")
    registry = world.registry({"demo": {"smoke": {"command": command, "expect": "^done", "timeout": 300}}})
    report, out = tmp_path / "report.json", tmp_path / "check.out"

    done = _check(world, registry, report, out, timeout=280)  # a hang raises TimeoutExpired
    assert done.returncode == 0, out.read_text()
    [result] = json.loads(report.read_text())["results"]
    assert result["status"] == "passed", result
    # The check did not wait for the sleeper: it ended with the smoke test (the sandbox's PID namespace,
    # or the fallback's sweep).
    ready.wait(1)
    assert ready.gone()


def test_secrets_of_the_caller_do_not_reach_children(world: World, cli, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "canary-github-4d1f")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-9b2e")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    # Steps and smoke tests can write nowhere outside (the sandbox): they print what they see.
    show = "import json, os; print('ENVIRON=' + json.dumps(dict(os.environ)))"
    dump = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
    registry = world.registry({"demo": {
        "env": world.env(steps=[f"python -c {json.dumps(show)}"]),
        "smoke": {"script": f"{show}\nprint('dumped')", "expect": "dumped"},
    }})

    report = tmp_path / "report.json"
    check = cli(*world.args(registry), "check", "--json", str(report), "demo")
    assert check.code == 0, check.out + check.err
    [result] = json.loads(report.read_text())["results"]
    assert result["status"] == "passed", result
    run = cli(*world.args(registry), "run", "demo", "--", "python", "-c", dump, str(dumps / "run.json"))
    assert run.code == 0, run.err

    printed = {stage: next(line[len("ENVIRON="):] for log in world.cache.glob(f"logs/*/demo--main/{stage}.log")
                           for line in log.read_text().splitlines() if line.startswith("ENVIRON="))
               for stage in ("setup", "smoke")}
    seen = {"step": json.loads(printed["setup"]), "smoke": json.loads(printed["smoke"]),
            "run": json.loads((dumps / "run.json").read_text())}
    for name, environ in seen.items():
        leaked = [key for key, value in environ.items() if "canary" in value]
        assert leaked == [], f"{name}: {leaked}"
        assert "GITHUB_TOKEN" not in environ and "AWS_SECRET_ACCESS_KEY" not in environ, name
        for key in ("PATH", "HOME", "VIRTUAL_ENV"):
            assert environ.get(key), f"{name}: {key} missing"
        assert environ["PATH"].startswith(environ["VIRTUAL_ENV"] + "/bin:"), name
    assert seen["smoke"]["CUDA_VISIBLE_DEVICES"] == ""
    assert seen["smoke"]["VIRTUAL_ENV"] == seen["step"]["VIRTUAL_ENV"] == seen["run"]["VIRTUAL_ENV"]
