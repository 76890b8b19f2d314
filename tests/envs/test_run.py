"""``awrepro run ID -- CMD``: the command runs in the checkout, with the environment active, and its exit code is ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.envs.conftest import World, printed_paths

pytestmark = pytest.mark.slow


def test_run_uses_the_checkout_and_the_environment_and_returns_the_exit_code(world: World, cli, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    registry = world.registry({"demo": {}})
    fetch = cli(*world.args(registry), "fetch", "demo")
    assert fetch.code == 0, fetch.out + fetch.err
    checkout = printed_paths(fetch.out)["demo"]
    assert (checkout / "main.py").is_file()
    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 0, setup.out + setup.err
    prefix = printed_paths(setup.out)["demo"]

    monkeypatch.setenv("AWREPRO_TEST_PASSED", "given")
    monkeypatch.setenv("AWREPRO_TEST_KEPT_OUT", "not given")
    seen = tmp_path / "seen.json"
    script = ("import json, os, sys, tinypkg\n"
              f"json.dump({{'cwd': os.getcwd(), 'prefix': sys.prefix, 'venv': os.environ.get('VIRTUAL_ENV'),\n"
              "           'passed': os.environ.get('AWREPRO_TEST_PASSED'),\n"
              "           'kept_out': os.environ.get('AWREPRO_TEST_KEPT_OUT')},\n"
              f"          open({str(seen)!r}, 'w'))\n"
              "sys.exit(7)\n")

    run = cli(*world.args(registry), "run", "--pass-env", "AWREPRO_TEST_PASSED", "demo", "--", "python", "-c", script)
    assert run.code == 7, run.err
    found = json.loads(seen.read_text())
    assert Path(found["cwd"]) == checkout
    assert Path(found["prefix"]) == prefix
    assert Path(found["venv"]) == prefix
    assert found["passed"] == "given"
    assert found["kept_out"] is None

    # Without --pass-env nothing of the caller's comes through; a command after `--` may start with a dash.
    assert cli(*world.args(registry), "run", "demo", "--", "python", "-c", script).code == 7
    assert json.loads(seen.read_text())["passed"] is None

    missing = cli(*world.args(registry), "run", "demo", "--", "no-such-program-awrepro")
    assert missing.code == 127
    assert "no-such-program-awrepro" in missing.err


def test_a_command_that_cannot_be_executed_is_exit_code_126_not_a_crash(world: World, cli) -> None:
    registry = world.registry({"demo": {}})  # main.py of the checkout is not executable

    run = cli(*world.args(registry), "run", "demo", "--", "./main.py")

    assert run.code == 126, run.err
    assert "./main.py" in run.err
    assert "internal error" not in run.err
