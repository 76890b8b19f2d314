"""``awrepro links`` against a real HTTP server on 127.0.0.1 and real repositories behind git daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from awrepro.links import sends_token
from tests.gitfixtures import free_port
from tests.maintainer.conftest import FakeGitHub
from tests.maintainer.linkserver import LinkServer

TOKEN = "ghp_canary_token_never_printed_0123456789"
PATHS = ["/ok", "/no-head", "/moved", "/moved-308", "/temporary", "/gone", "/busy", "/limited", "/down", "/slow",
         *(f"/wait/{n}" for n in range(4))]


@pytest.fixture
def server() -> Iterator[LinkServer]:
    server = LinkServer()
    try:
        yield server
    finally:
        server.stop()


def _paper(paper_id: str, pdf: str, extra: str = "") -> str:
    return f'''
[papers.{paper_id}]
title = "Paper {paper_id}"
venue = "Tests"
year = 2024
section = "Links"
pdf = "{pdf}"
{extra}'''


def _registry(tmp_path: Path, server: LinkServer, github: FakeGitHub) -> Path:
    commit = github.add("https://github.com/lab/model")
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    papers = [_paper(f"p{index}", server.url(path)) for index, path in enumerate(PATHS)]
    papers.append(_paper("closed", closed))
    papers.append(_paper("code", server.url("/ok"), f'''
[papers.code.impl.lab.code]
git = "https://github.com/lab/model"
commit = "{commit}"
listed_as = "{server.url("/moved")}"

[papers.code.impl.vanished.code]
git = "https://github.com/lab/vanished"
commit = "{commit}"
'''))
    path = tmp_path / "registry.toml"
    path.write_text("format = 1\n" + "".join(papers))
    return path


def test_every_kind_of_answer(cli, server: LinkServer, github: FakeGitHub, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    registry = _registry(tmp_path, server, github)
    cache = tmp_path / "cache"
    summary = tmp_path / "links.md"
    result = cli("--registry", str(registry), "--cache-dir", str(cache), "links", "--json", "--timeout", "3",
                 "--per-host", "2", "--markdown", str(summary))
    assert result.code == 1, result.err  # broken links
    report = json.loads(result.out)
    status = {link["url"]: link["status"] for link in report["links"]}
    url = server.url
    assert status[url("/ok")] == "ok"
    assert status[url("/no-head")] == "ok"
    assert [seen.method for seen in server.requests("/no-head")] == ["HEAD", "GET"]  # HEAD refused: asked with GET
    assert status[url("/moved")] == status[url("/moved-308")] == "redirected"
    moved = next(link for link in report["links"] if link["url"] == url("/moved"))
    assert moved["suggestion"] == url("/ok") and sorted(moved["where"]) == ["code", "p2"]
    assert status[url("/temporary")] == "ok"  # a temporary redirect suggests nothing
    assert status[url("/gone")] == "broken"
    assert status[url("/busy")] == "ok"  # 429, then 200 after the Retry-After second
    busy = server.requests("/busy")
    assert len(busy) == 2 and busy[1].at - busy[0].at >= 0.9
    assert status[url("/limited")] == "rate-limited"
    assert len(server.requests("/limited")) == 3
    assert status[url("/down")] == "broken"
    assert len(server.requests("/down")) == 3  # 503 retried
    assert status[url("/slow")] == "timeout"
    assert status[next(u for u in status if u.endswith("/nobody-listens"))] == "broken"
    assert status["https://github.com/lab/model"] == "ok"  # git ls-remote, through insteadOf
    assert status["https://github.com/lab/vanished"] == "broken"
    assert report["summary"] == {"broken": 4, "timeout": 1, "rate-limited": 1, "redirected": 2, "ok": 9}
    assert server.state.most_in_flight <= 2  # --per-host 2
    # The token goes to GitHub's hosts only: not to this server, and never into output or reports.
    assert all(seen.authorization is None for seen in server.state.seen)
    assert TOKEN not in result.out + result.err + summary.read_text()
    assert "| broken | " in summary.read_text()

    # Good results are cached (a day by default); failures are asked again.
    before = {path: len(server.requests(path)) for path in ("/ok", "/gone", "/no-head")}
    again = cli("--registry", str(registry), "--cache-dir", str(cache), "links", "p0", "p1", "p5")
    assert again.code == 1
    assert len(server.requests("/ok")) == before["/ok"]
    assert len(server.requests("/no-head")) == before["/no-head"]
    assert len(server.requests("/gone")) == before["/gone"] + 1
    assert "cached" in again.out and "3 links: 1 broken, 2 ok" in again.out
    fresh = cli("--registry", str(registry), "--cache-dir", str(cache), "links", "p0", "--ttl", "0")
    assert fresh.code == 0 and len(server.requests("/ok")) == before["/ok"] + 1


def test_the_time_budget_bounds_the_run(cli, server: LinkServer, tmp_path: Path) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text("format = 1\n" + _paper("a", server.url("/limited")) + _paper("b", server.url("/wait/9")))
    result = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), "links", "--json",
                 "--budget", "1", "--per-host", "1")
    report = json.loads(result.out)
    assert {link["status"] for link in report["links"]} <= {"rate-limited", "ok", "timeout"}
    assert len(server.requests("/limited")) == 1  # Retry-After 1 s does not fit a 1 s budget: no wait, no retry
    assert result.code == 0  # rate-limited is not broken


def test_token_only_for_github_over_https() -> None:
    assert sends_token("https://github.com/allenai/longformer")
    assert sends_token("https://api.github.com/repos/a/b")
    assert not sends_token("http://github.com/allenai/longformer")
    assert not sends_token("https://github.com.evil.example/x")
    assert not sends_token("https://arxiv.org/pdf/2004.05150.pdf")
