"""A build killed half way leaves a folder without a marker: the next run wipes it and builds again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs.conftest import MARKER, World, printed_paths
from tests.processes import alive, descendants, pid_sleeper, wait_until

pytestmark = pytest.mark.slow


def _kill_when(command: list[str], ready, out: Path, cwd: Path) -> list[int]:  # noqa: ANN001
    """Start ``awrepro`` and SIGKILL it as soon as ``ready()`` holds; the processes it had started then."""
    with open(out, "wb") as handle:
        first = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            assert wait_until(ready, interval=0.01), out.read_text()
            children = descendants(first.pid)
            first.send_signal(signal.SIGKILL)
        finally:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL, out.read_text()
    return children


def _finish(world: World, command: list[str], leftover: Path, cwd: Path) -> Path:
    """Run again: the leftover is wiped (not reused), the environment is built, marked and works."""
    (leftover / "leftover-sentinel").write_text("from the killed run\n")
    second = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "built in" in second.stdout  # rebuilt, not "ready"
    prefix = printed_paths(second.stdout)["demo"]
    assert prefix == leftover
    assert not (prefix / "leftover-sentinel").exists()
    marker = json.loads((prefix / MARKER).read_text())
    assert prefix.name == marker["key"][:16]
    works = subprocess.run([str(prefix / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
                           capture_output=True, text=True, timeout=60)
    assert works.stdout.strip() == "42", works.stderr
    third = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=180)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "demo  ready  " in third.stdout  # now trusted
    return prefix


def test_a_build_killed_in_its_step_is_redone(world: World, tmp_path: Path, pid_reports) -> None:  # noqa: ANN001
    # The first build hangs in its step (installs done, marker not yet written) until it is killed;
    # the next build goes through. A step writes only its environment (the sandbox) and reads the
    # cache: the test tells it to hang with a file there, and counts its runs in the setup logs.
    hang, ready = world.cache / "hang-in-the-step", pid_reports()
    step = f"echo step-run; if [ -e {hang} ]; then {pid_sleeper(ready)}; fi"
    registry = world.registry({"demo": {"env": world.env(steps=[step])}})
    command = [sys.executable, "-m", "awrepro", *world.args(registry), "setup", "demo"]
    world.cache.mkdir()
    hang.touch()

    _kill_when(command, lambda: ready.reported(1), tmp_path / "first.out", tmp_path)
    [leftover] = world.env_dirs()
    assert (leftover / "bin" / "python").exists()  # the build had got far: environment made, packages in
    assert not (leftover / MARKER).exists()

    hang.unlink()
    _finish(world, command, leftover, tmp_path)
    runs = [line for log in world.cache.glob("logs/*/demo--main.log") for line in log.read_text().splitlines()
            if line == "step-run"]
    assert runs == ["step-run", "step-run"]  # the step ran again, and only once more
    assert ready.gone()  # the killed build's process did not live on


def test_a_build_killed_while_creating_the_environment_is_redone(world: World, tmp_path: Path) -> None:
    # venv + pip takes seconds to make an environment (ensurepip installs pip into it): kill awrepro
    # as soon as pip starts to appear, and start again at once, while the killed run's `python -m venv`
    # still writes into the folder.
    registry = world.registry({"demo": {"env": world.env(backend="pip")}})
    command = [sys.executable, "-m", "awrepro", *world.args(registry), "setup", "demo"]

    killed = _kill_when(command, lambda: bool(list(world.envs.glob("*/lib/python*/site-packages/pip"))),
                        tmp_path / "first.out", tmp_path)
    [leftover] = world.env_dirs()
    assert not (leftover / MARKER).exists()

    _finish(world, command, leftover, tmp_path)
    assert killed  # the killed run was making the environment (venv, pip) ...
    assert wait_until(lambda: not any(alive(pid) for pid in killed)), killed  # ... and none of that lives on
