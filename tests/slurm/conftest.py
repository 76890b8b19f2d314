"""A real single-node Slurm cluster for the whole session, started by the first Slurm test.

A fixture rather than a step of ``.ci/run``: ``python -m pytest`` (the README's one test
command) runs these tests too, on any machine with Slurm's binaries, and the cluster lives
only as long as the tests that use it. Without the binaries the tests are skipped, with the
reason shown (``-ra``) — except where ``AWREPRO_REQUIRE_SLURM`` is set (``.ci/run`` sets it):
there a missing Slurm fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.slurmcluster import Cluster, missing_binaries


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    missing = missing_binaries()
    if missing:
        reason = f"Slurm is not installed (missing {', '.join(missing)}; scripts/install-test-deps installs it)"
        if os.environ.get("AWREPRO_REQUIRE_SLURM"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The session's cluster, reachable by awrepro and by the Slurm commands the test runs."""
    for name, value in slurm_cluster.environ.items():
        monkeypatch.setenv(name, value)
    return slurm_cluster
