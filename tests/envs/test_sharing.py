"""One environment per spec: identical specs share it, any change to the spec builds another."""

from __future__ import annotations

import json

import pytest

from tests.envs.conftest import MARKER, World, printed_paths

pytestmark = pytest.mark.slow


def test_identical_specs_share_one_environment_and_a_changed_spec_builds_another(world: World, cli) -> None:
    world.repo("other")
    registry = world.registry({
        "demo": {"repo": "demo"},
        "twin": {"repo": "other"},  # other code, same environment spec
        "extra": {"repo": "demo", "env": world.env(requirements=["tinypkg==0.1", "tinyextra==0.1"])},
    })

    first = cli(*world.args(registry), "setup", "demo", "twin")
    assert first.code == 0, first.out + first.err
    paths = printed_paths(first.out)
    assert set(paths) == {"demo", "twin"}, first.out
    assert paths["demo"] == paths["twin"]
    assert world.env_dirs() == [paths["demo"]]
    assert (paths["demo"] / MARKER).is_file()

    again = cli(*world.args(registry), "setup", "demo")
    assert again.code == 0, again.out + again.err
    assert "demo  ready  " in again.out  # reused, not rebuilt
    assert printed_paths(again.out)["demo"] == paths["demo"]

    changed = cli(*world.args(registry), "setup", "extra")
    assert changed.code == 0, changed.out + changed.err
    extra = printed_paths(changed.out)["extra"]
    assert extra != paths["demo"]
    assert "built in" in changed.out
    assert json.loads((extra / MARKER).read_text())["requirements"] == ["tinypkg==0.1", "tinyextra==0.1"]

    other_backend = cli(*world.args(registry), "setup", "--backend", "pip", "demo")
    assert other_backend.code == 0, other_backend.out + other_backend.err
    pip_env = printed_paths(other_backend.out)["demo"]
    assert pip_env not in (paths["demo"], extra)
    assert json.loads((pip_env / MARKER).read_text())["backend"] == "pip"
    assert sorted(world.env_dirs()) == sorted([paths["demo"], extra, pip_env])
    assert len(world.markers()) == 3


@pytest.mark.parametrize("backend", ["uv", "pip"])
def test_both_backends_build_a_working_environment(world: World, cli, backend: str, tmp_path) -> None:
    registry = world.registry({"demo": {"smoke": {"script": "import tinypkg\nprint('value', tinypkg.VALUE)\n",
                                                   "expect": "value 42"}}})
    chosen = ["--backend", backend] if backend == "pip" else []  # uv: the default

    setup = cli(*world.args(registry), "setup", *chosen, "demo")
    assert setup.code == 0, setup.out + setup.err
    prefix = printed_paths(setup.out)["demo"]
    marker = json.loads((prefix / MARKER).read_text())
    assert marker["backend"] == backend
    # venv + pip puts pip into the environment; uv's environments come without it
    assert (prefix / "bin" / "pip").exists() == (backend == "pip")

    report = tmp_path / "report.json"
    check = cli(*world.args(registry), "check", *chosen, "--json", str(report), "demo")
    assert check.code == 0, check.out + check.err
    [result] = json.loads(report.read_text())["results"]
    assert result["status"] == "passed", result
    assert result["env_key"] == marker["key"]

    out = tmp_path / "imported.txt"
    run = cli(*world.args(registry), "run", *chosen, "demo", "--", "python", "-c",
              f"import sys, tinypkg; open({str(out)!r}, 'w').write(sys.prefix + '|' + str(tinypkg.VALUE))")
    assert run.code == 0, run.out + run.err
    assert out.read_text() == f"{prefix}|42"
