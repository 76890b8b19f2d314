"""``awrepro outdated`` and ``awrepro bump`` against real repositories with new commits upstream."""

from __future__ import annotations

import difflib
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.maintainer.conftest import FakeGitHub
from tests.maintainer.tlsgit import MovedRepositories

MODEL = "https://github.com/lab/model"
STILL = "https://github.com/lab/still"
GONE = "https://github.com/lab/gone"


def _days_ago(days: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def _registry(path: Path, pins: dict[str, tuple[str, str]]) -> Path:
    papers = []
    for paper_id, (url, commit) in pins.items():
        papers.append(f'''
# {paper_id}: a comment that must survive a bump
[papers.{paper_id}]
title = "Paper {paper_id}"
venue = "Tests"
year = 2024
section = "Tests"

[papers.{paper_id}.impl.main.code]
git = "{url}"
commit = "{commit}"   # pinned by hand

[papers.{paper_id}.impl.main.smoke]
command = "test -f ok.txt"    # the new pin must keep ok.txt
''')
    path.write_text("format = 1\n" + "".join(papers))
    return path


def _upstream(github: FakeGitHub) -> dict[str, str]:
    """model: c1 (30 days old) -> c2 (20 days, tagged v2, has ok.txt) -> c3 (today, drops ok.txt)."""
    shas = {"c1": github.add(MODEL, {"ok.txt": "1\n"})}
    shas["c1"] = github.commit(MODEL, {"ok.txt": "1\n", "a": "1"}, "c1", date=_days_ago(30))
    shas["c2"] = github.commit(MODEL, {"ok.txt": "2\n"}, "c2", date=_days_ago(20))
    github.tag(MODEL, "v2")
    (github.work / "github.com/lab/model/ok.txt").unlink()
    shas["c3"] = github.commit(MODEL, {"b": "3"}, "c3")
    shas["still"] = github.add(STILL)
    shas["gone"] = github.add(GONE)
    return shas


def test_outdated_reports_behind_up_to_date_and_vanished(cli, github: FakeGitHub, tmp_path: Path) -> None:
    shas = _upstream(github)
    aside = github.side_branch(STILL, "experiment")
    registry = _registry(tmp_path / "registry.toml", {"old": (MODEL, shas["c1"]), "fresh": (STILL, shas["still"]),
                                                      "lost": (GONE, shas["gone"]), "aside": (STILL, aside)})
    shutil.rmtree(github.bare(GONE))
    result = cli("--registry", str(registry), "outdated", "--json")
    assert result.code == 0, result.err
    rows = {row["id"]: row for row in json.loads(result.out)}
    assert rows["old"]["state"] == "behind" and rows["old"]["behind"] == 2  # c2 and c3
    assert rows["old"]["head"] == shas["c3"] and rows["old"]["branch"] == "main"
    assert rows["old"]["pin_age_days"] == 30
    assert rows["fresh"]["state"] == "up-to-date" and rows["fresh"]["behind"] == 0
    assert rows["lost"]["state"] == "vanished" and rows["lost"]["note"] == f"repository not found: {GONE}"
    assert rows["aside"]["state"] == "off-branch" and rows["aside"]["behind"] is None
    assert rows["aside"]["pin_date"] is not None  # fetched by its id: the pin exists, on another branch
    table = cli("--registry", str(registry), "outdated", "old")
    assert table.code == 0 and "\nold  behind  " in table.out and "1 pin: 1 behind" in table.out


def test_bump_changes_one_line_honours_the_cooldown_and_checks(cli, github: FakeGitHub, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    shas = _upstream(github)
    registry = _registry(tmp_path / "registry.toml", {"old": (MODEL, shas["c1"])})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    before = registry.read_text()

    young = cli("--registry", str(registry), "bump", "old")
    assert young.code == 1
    assert "younger than the cooldown of 7 days; wait, or bump with --cooldown 0" in young.err
    assert registry.read_text() == before

    tagged = cli("--registry", str(registry), "bump", "old", "--to", "v2")
    assert tagged.code == 0, tagged.err
    after = registry.read_text()
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert changed == [f'- commit = "{shas["c1"]}"   # pinned by hand', f'+ commit = "{shas["c2"]}"   # pinned by hand']
    assert f"old: pin moved {shas['c1'][:12]} -> {shas['c2'][:12]} (v2)" in tagged.out

    # The head drops ok.txt: the smoke test fails there, and the pin goes back to v2.
    failing = cli("--registry", str(registry), *cache, "bump", "old", "--cooldown", "0", "--check")
    assert failing.code == 1
    assert "\nold  failed  smoke  smoke" in failing.out  # the smoke test itself failed on the new pin
    assert f"old: check failed on {shas['c3'][:12]}: the pin is back at {shas['c2'][:12]}" in failing.err
    assert registry.read_text() == after

    same = cli("--registry", str(registry), *cache, "bump", "old", "--to", "v2", "--check")
    assert same.code == 0 and "already pinned at v2" in same.out

    unknown = cli("--registry", str(registry), "bump", "old", "--to", "no-such-tag")
    assert unknown.code == 1 and f"{MODEL} has no branch or tag 'no-such-tag'" in unknown.err


def test_bump_check_keeps_a_pin_that_passes(cli, github: FakeGitHub, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    shas = _upstream(github)
    registry = _registry(tmp_path / "registry.toml", {"old": (MODEL, shas["c1"])})
    before = registry.read_text()
    damaged = tmp_path / "damaged-cache"
    damaged.mkdir()
    (damaged / "results.db").write_text("not a database\n")
    broken = cli("--registry", str(registry), "--cache-dir", str(damaged), "bump", "old", "--to", shas["c2"], "--check")
    assert broken.code == 2
    assert f"old: the check did not finish: the pin is back at {shas['c1'][:12]}" in broken.err
    assert registry.read_text() == before

    result = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), "bump", "old", "--to", shas["c2"],
                 "--check")
    assert result.code == 0, result.err
    assert "check passed on" in result.out
    assert f'commit = "{shas["c2"]}"   # pinned by hand' in registry.read_text()


def test_a_repository_that_moved_is_reported_with_its_new_url(cli, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server = MovedRepositories(tmp_path / "https")
    try:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.cert))  # git trusts the test's certificate
        sha = server.add("lab/renamed")
        server.moved("lab/model", "lab/renamed")
        registry = _registry(tmp_path / "registry.toml", {"moved": (server.url("lab/model"), sha)})
        result = cli("--registry", str(registry), "outdated", "--json")
        assert result.code == 0, result.err
        [row] = json.loads(result.out)
        assert row["state"] == "moved" and row["moved_to"] == server.url("lab/renamed.git")
        assert row["note"] == f"moved to {server.url('lab/renamed.git')}: update the registry's URL"
        links = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), "links", "moved", "--json")
        by_url = {link["url"]: link for link in json.loads(links.out)["links"]}
        assert by_url[server.url("lab/model")]["status"] == "redirected"
        assert by_url[server.url("lab/model")]["suggestion"] == server.url("lab/renamed.git")
    finally:
        server.stop()
