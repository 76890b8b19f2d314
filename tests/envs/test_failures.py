"""A build that fails says which step failed and leaves nothing behind that a later run would trust."""

from __future__ import annotations

import pytest

from tests.envs.conftest import World

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_a_failing_install_is_a_setup_error_and_leaves_nothing_trusted(world: World, cli, backend: str) -> None:
    # Not in the wheel folder, and no index to look in.
    registry = world.registry({"demo": {"env": world.env(backend=backend,
                                                         requirements=["tinypkg==0.1", "awrepro-no-such-pkg==0.1"])}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 1, setup.out + setup.err
    [line] = [line for line in setup.out.splitlines() if line.startswith("demo")]
    assert "setup-error" in line
    assert "install requirements failed" in line
    assert "awrepro-no-such-pkg" in line
    assert world.markers() == []
    assert world.env_dirs() == []

    # A later run builds again (and fails again): nothing of the first is trusted.
    run = cli(*world.args(registry), "run", "demo", "--", "python", "-V")
    assert run.code == 1
    assert "install requirements failed" in run.err
    assert world.markers() == []


def test_a_failing_step_names_the_step(world: World, cli) -> None:
    registry = world.registry({"demo": {"env": world.env(steps=["true", "echo oops >&2; exit 3"])}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 1, setup.out + setup.err
    [line] = [line for line in setup.out.splitlines() if line.startswith("demo")]
    assert "setup-error" in line
    assert "step `echo oops >&2; exit 3` failed: oops" in line
    assert world.markers() == []
    assert world.env_dirs() == []


def test_a_failing_health_check_is_a_setup_error(world: World, cli) -> None:
    # The step removes what the requirements installed: the health check must notice.
    step = 'rm -r "$VIRTUAL_ENV"/lib/python*/site-packages/tinypkg-0.1.dist-info'
    registry = world.registry({"demo": {"env": world.env(steps=[step])}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 1, setup.out + setup.err
    assert "health check failed: not installed: tinypkg" in setup.out
    assert world.markers() == []
