"""A build that fills the disk is a setup error naming the folder, with the step's own message,
though the stage's log is on the same full disk (a real small filesystem: ``tests/smalldisk.py``)."""

from __future__ import annotations

import json

from tests.envs.conftest import World
from tests.smalldisk import MiB, small_disk, used


def test_a_step_that_fills_the_disk_is_a_setup_error_naming_the_folder(world: World, cli) -> None:
    step = "head -c 8000000 /dev/zero > filler.bin"
    registry = world.registry({"demo": {"env": world.env(requirements=[], steps=[step])}})
    report = world.tmp / "report.json"
    with small_disk(world.cache, 4 * MiB):
        done = cli(*world.args(registry), "check", "demo", "--json", str(report))

        assert done.code == 1, done.out + done.err
        (result,) = json.loads(report.read_text())["results"]
        assert (result["status"], result["failed_stage"]) == ("setup-error", "setup"), result
        assert result["note"] == (f"no space left on device in {world.envs} (step `{step}` failed: "
                                  "head: error writing 'standard output': No space left on device)")
        assert world.env_dirs() == []
        assert used(world.cache) < MiB  # the half-built environment is gone
