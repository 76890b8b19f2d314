"""No interpreter on this machine fits the entry's constraint: the entry is skipped, never a failure."""

from __future__ import annotations

import json
from pathlib import Path

from tests.envs.conftest import World


def test_a_missing_interpreter_skips_the_entry(world: World, cli, tmp_path: Path) -> None:
    registry = world.registry({"demo": {"env": world.env(python="==2.1.*")}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 0, setup.out + setup.err
    [line] = [line for line in setup.out.splitlines() if line.startswith("demo")]
    assert "skipped" in line
    assert "needs Python ==2.1.*; none found" in line

    report = tmp_path / "report.json"
    check = cli(*world.args(registry), "check", "--json", str(report), "demo")
    assert check.code == 0, check.out + check.err
    [result] = json.loads(report.read_text())["results"]
    assert result["status"] == "skipped"
    assert "needs Python ==2.1.*; none found" in result["note"]

    run = cli(*world.args(registry), "run", "demo", "--", "python", "-V")
    assert run.code == 2
    assert "needs Python ==2.1.*; none found" in run.err

    assert world.env_dirs() == []  # nothing was built
