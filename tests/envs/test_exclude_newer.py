"""Date-bounded resolution (``env.exclude_newer``) against a real index on 127.0.0.1 with upload times.

The index offers ``datedpkg`` 1.0 (2019) and 2.0 (2022), and ``helper`` 1.0 (2018) and 2.0 (2023).
``heavy`` lies in the local wheel folder (no upload time, like the torch wheel) and needs helper ≥ 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.envs.conftest import World, write_wheel
from tests.pyindex import PackageIndex

pytestmark = pytest.mark.slow

SHOW = "python -c 'import datedpkg, importlib.metadata as m; print(\"datedpkg\", datedpkg.VERSION, \"helper\", m.version(\"helper\") if any(d.metadata[\"Name\"] == \"helper\" for d in m.distributions()) else None)'"


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackageIndex]:
    monkeypatch.delenv("UV_OFFLINE")
    monkeypatch.delenv("UV_NO_INDEX")
    served = PackageIndex(tmp_path / "index-files")
    served.add("datedpkg", "1.0", "2019-01-01T00:00:00Z")
    served.add("datedpkg", "2.0", "2022-01-01T00:00:00Z")
    served.add("helper", "1.0", "2018-01-01T00:00:00Z")
    served.add("helper", "2.0", "2023-01-01T00:00:00Z")
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _env(world: World, index: PackageIndex, **overrides: object) -> dict[str, object]:
    local = world.tmp / "local-wheels"
    write_wheel(local, "heavy", "1.0", "", requires=("helper>=2",))
    return world.env(requirements=["datedpkg"], find_links=[str(local)], index_url=index.url, **overrides)


def _show(world: World, cli, registry: Path) -> str:
    shown = world.tmp / "shown.txt"
    done = cli(*world.args(registry), "run", "demo", "--", "/bin/sh", "-c", f"{SHOW} > {shown}")
    assert done.code == 0, done.out + done.err
    return shown.read_text().strip()


def test_a_date_bound_installs_what_the_index_offered_that_day(world: World, cli, index: PackageIndex) -> None:
    today = world.registry({"demo": {"env": _env(world, index)}}, name="today.toml")
    assert _show(world, cli, today) == "datedpkg 2.0 helper None"

    bounded = world.registry({"demo": {"env": _env(world, index, exclude_newer="2020-06-01")}}, name="bounded.toml")
    assert _show(world, cli, bounded) == "datedpkg 1.0 helper None"
    assert len(world.env_dirs()) == 2  # the bound is part of the environment's key

    exempt = world.registry({"demo": {"env": _env(world, index, exclude_newer="2020-06-01",
                                                   exclude_newer_exempt=["datedpkg"])}}, name="exempt.toml")
    assert _show(world, cli, exempt) == "datedpkg 2.0 helper None"


def test_commit_bounds_by_the_pinned_commits_date(world: World, cli, index: PackageIndex,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2019-06-01T12:00:00+00:00")
    world.repo("demo")
    registry = world.registry({"demo": {"env": _env(world, index, exclude_newer="commit")}})
    assert _show(world, cli, registry) == "datedpkg 1.0 helper None"
    [log] = list((world.cache / "logs").rglob("demo--main.log"))
    assert "exclude_newer 2019-06-01T12:00:00+00:00" in log.read_text()


def test_a_local_wheel_is_exempt_with_everything_it_needs(world: World, cli, index: PackageIndex) -> None:
    # heavy (local, no upload time) needs helper ≥ 2, uploaded after the bound: both are exempt,
    # while datedpkg, which heavy does not need, stays bounded.
    env = _env(world, index, exclude_newer="2020-06-01")
    env["requirements"] = ["heavy==1.0", "datedpkg"]
    registry = world.registry({"demo": {"env": env}})
    assert _show(world, cli, registry) == "datedpkg 1.0 helper 2.0"


def test_pip_without_uploaded_prior_to_says_so(world: World, cli, index: PackageIndex) -> None:
    registry = world.registry({"demo": {"env": _env(world, index, exclude_newer="2020-06-01", backend="pip")}})
    done = cli(*world.args(registry), "setup", "demo")
    assert done.code == 1
    assert "exclude_newer needs pip's --uploaded-prior-to (pip 26 or newer); pip 2" in done.out
    assert 'use backend = "uv"' in done.out
    assert world.markers() == []


def test_bad_dates_are_registry_errors(world: World, cli) -> None:
    registry = world.registry({"demo": {"env": world.env(exclude_newer="2019-13-01", exclude_newer_exempt=["torch=soon"])}})
    done = cli(*world.args(registry), "validate")
    assert done.code == 2
    assert "papers.demo.impl.main.env.exclude_newer: exclude_newer must be a date like '2019-06-01', not '2019-13-01'" in done.err
    assert "env.exclude_newer_exempt" in done.err and "the date of torch must be a date" in done.err
