"""The user's pip configuration: pip reads it itself, the uv backend is handed its find-links and constraints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.envs.conftest import MARKER, World, printed_paths, write_wheel

pytestmark = pytest.mark.slow


def _user_pip_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\n" + "".join(f"{name} = {value}\n" for name, value in settings.items()))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_a_wheel_folder_named_only_by_the_users_pip_config_is_used(world: World, cli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   backend: str) -> None:
    user_wheels = tmp_path / "user-wheels"
    write_wheel(user_wheels, "tinyuser", "0.1", "WHO = 'user'\n")
    _user_pip_config(tmp_path, monkeypatch, **{"find-links": str(user_wheels)})
    env = world.env(backend=backend, requirements=["tinyuser==0.1"])
    del env["find_links"]  # the entry does not name the folder
    registry = world.registry({"demo": {"env": env}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 0, setup.out + setup.err
    prefix = printed_paths(setup.out)["demo"]
    assert (prefix / MARKER).is_file()
    assert list(prefix.glob("lib/python*/site-packages/tinyuser/__init__.py"))


def test_constraints_of_the_users_pip_config_bind_the_uv_backend(world: World, cli, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("tinypkg!=0.1\n")
    _user_pip_config(tmp_path, monkeypatch, constraint=str(constraints))
    registry = world.registry({"demo": {}})

    setup = cli(*world.args(registry), "setup", "demo")
    assert setup.code == 1, setup.out + setup.err
    assert "setup-error  install requirements failed" in setup.out
    assert world.markers() == []
