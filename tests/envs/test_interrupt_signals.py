"""Ctrl-C (SIGINT) or SIGTERM (a cancelled CI job) during ``awrepro setup`` ends its builds, then awrepro.

Build commands run in sessions of their own, so only awrepro can end them: if it just died, they
would run on; if it waited for them, a Ctrl-C would hang until they finish.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.envs.conftest import World
from tests.processes import pid_sleeper

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("sig", "names"), [
    (signal.SIGINT, ("demo", "other")),
    (signal.SIGTERM, ("demo", "other")),
    (signal.SIGTERM, ("demo",)),
], ids=["SIGINT-parallel", "SIGTERM-parallel", "SIGTERM-one"])
def test_an_interrupted_setup_ends_its_builds(world: World, tmp_path: Path, sig: signal.Signals,
                                              names: tuple[str, ...], pid_reports) -> None:  # noqa: ANN001
    entries = {}
    ready = pid_reports()
    for name in names:  # steps that differ: one environment each, built at the same time
        # The step reports its pid once it runs (real readiness; no command-line matching), over a
        # socket: in the sandbox a step writes only its own environment.
        step = f"{pid_sleeper(ready)} {name}"
        entries[name] = {"env": world.env(steps=[step])}
    registry = world.registry(entries)
    command = [sys.executable, "-m", "awrepro", *world.args(registry), "setup", "--jobs", "2", *names]

    out = tmp_path / "setup.out"
    with open(out, "wb") as handle:
        setup = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            ready.wait(len(names))  # two builds at once on a loaded machine
            setup.send_signal(sig)
            code = setup.wait(timeout=60)  # not the 300 s of the steps
        finally:
            setup.kill()
            setup.wait()
    assert code == 130, out.read_text()
    assert ready.gone()  # every step died: their connections ended
    assert world.markers() == []
    assert world.env_dirs() == []  # the interrupted builds were cleared away
