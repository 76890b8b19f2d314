"""``awrepro import``: the real seed list into a registry, repositories pinned through insteadOf."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

from tests.maintainer.conftest import ROOT, SEED_LIST, FakeGitHub

SHIPPED = ROOT / "registry.toml"


def _shipped() -> dict:
    return tomllib.loads(SHIPPED.read_text())["papers"]


def _code_urls(paper: dict) -> set[str]:
    urls = {paper["listed_as"]} if "listed_as" in paper else set()
    for impl in paper.get("impl", {}).values():
        code = impl["code"]
        urls |= {code[key] for key in ("git", "archive", "listed_as") if key in code}
    return urls


def _list_repositories() -> list[str]:
    """The repositories the seed list links (github.com/OWNER/REPO, tree/... links cut back)."""
    links = re.findall(r"\[__code__\]\((https://github\.com/[^/)]+/[^/)#]+)[^)]*\)", SEED_LIST.read_text())
    return sorted(set(links))


def _serve_list_repositories(github: FakeGitHub) -> dict[str, str]:
    return {url: github.add(url) for url in _list_repositories()}


def test_seed_list_into_an_empty_registry_matches_the_shipped_registry(cli, github: FakeGitHub, tmp_path: Path) -> None:
    heads = _serve_list_repositories(github)
    target = tmp_path / "r.toml"
    target.write_text("")
    result = cli("import", str(SEED_LIST), "--into", str(target))
    assert result.code == 0, result.err
    imported = tomllib.loads(target.read_text())["papers"]
    shipped = _shipped()
    assert len(imported) == 20

    def key(paper: dict) -> str:
        return paper.get("arxiv") or paper["title"].casefold()

    by_key = {key(p): p for p in shipped.values()}
    assert [by_key[key(p)]["section"] for p in imported.values()] == [p["section"] for p in imported.values()]
    assert [key(p) for p in imported.values()] == [key(p) for p in shipped.values()]  # same papers, same order
    case_only = []
    for paper in imported.values():
        mine = by_key[key(paper)]
        for field in ("section", "venue", "year", "arxiv", "pdf"):
            assert paper.get(field) == mine.get(field), (paper["title"], field)
        if paper["title"] != mine["title"]:
            assert paper["title"].casefold() == mine["title"].casefold()
            case_only.append(paper["title"])
        # Every code URL the list gives is one the shipped registry has for that paper.
        assert _code_urls(paper) <= _code_urls(mine), paper["title"]
        for impl in paper.get("impl", {}).values():
            code = impl["code"]
            assert code["commit"] == heads[code["git"]]
            if "subdir" in code:  # a tree/BRANCH/PATH link: the folder the shipped entry uses
                assert code["subdir"] in {c.get("subdir") for c in (i["code"] for i in mine["impl"].values())}
    assert case_only == ["REFORMER: The Efficient Transformer"]  # the list shouts; the registry has the paper's own capitals
    with_code = {p["title"] for p in imported.values() if _code_urls(p)}
    assert len(with_code) == 15  # 12 repositories and 3 pages (an organisation, a wiki, a personal site)
    assert sum(1 for p in imported.values() if "impl" in p) == 12

    check = cli("--registry", str(target), "validate")
    assert check.code == 0, check.err
    assert "20 papers, 12 implementations, 20 warnings" in check.out
    assert "papers.deep-high-resolution: draft: the list links https://github.com/HRNet" in check.err
    assert "papers.longformer.impl.allenai: draft: no smoke test yet" in check.err

    drafts = cli("--registry", str(target), "--cache-dir", str(tmp_path / "cache"), "check", "longformer", "linformer")
    assert drafts.code == 0, drafts.err
    assert "longformer  skipped  0.0s  draft: no smoke test yet; add a [smoke] table" in drafts.out
    assert "linformer  skipped  0.0s  draft: the list links no code" in drafts.out
    assert not (tmp_path / "cache" / "repos").exists()  # a draft is skipped before anything is fetched


def test_existing_papers_are_kept_new_ones_added_and_formatting_stays(cli, github: FakeGitHub, tmp_path: Path) -> None:
    _serve_list_repositories(github)
    target = tmp_path / "registry.toml"
    text = SHIPPED.read_text()
    start = text.index("[papers.longformer]")
    end = text.index("[papers.funnel-transformer]")
    target.write_text(text[:start] + text[end:])  # the registry without Longformer
    shutil.copytree(ROOT / "patches", tmp_path / "patches")
    result = cli("import", str(SEED_LIST), "--into", str(target))
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].startswith("added    longformer  draft: https://github.com/allenai/longformer @ ")
    assert "1 added, 19 already there" in result.out
    after = target.read_text()
    assert after.startswith(text[:start] + text[end:])  # nothing that was there changed, comments included
    assert tomllib.loads(after)["papers"]["longformer"]["impl"]["allenai"]["code"]["git"] == "https://github.com/allenai/longformer"

    again = cli("import", str(SEED_LIST), "--into", str(target))
    assert again.code == 0 and "0 added, 20 already there" in again.out
    assert target.read_text() == after  # nothing new: the file is not even rewritten

    update = cli("import", str(SEED_LIST), "--into", str(target), "--update")
    assert update.code == 0, update.err
    updated = tomllib.loads(target.read_text())["papers"]
    assert "updated  hrnet-pose  summary" in update.out  # the list's own summary, typo and all
    assert updated["hrnet-pose"]["summary"].endswith("connect the mutliresolution subnetworks in parallel.")
    assert updated["reformer"]["title"] == "Reformer: The Efficient Transformer"  # capitals only: kept
    assert updated["hrnet-pose"]["impl"] == _shipped()["hrnet-pose"]["impl"]  # only paper metadata changes
    assert "# The list links the HRNet GitHub organization" in target.read_text()


def test_a_repository_that_cannot_be_pinned_writes_nothing(cli, github: FakeGitHub, tmp_path: Path) -> None:
    heads = _serve_list_repositories(github)
    shutil.rmtree(github.bare("https://github.com/yzh119/BPT"))
    target = tmp_path / "r.toml"
    result = cli("import", str(SEED_LIST), "--into", str(target))
    assert result.code == 1
    assert result.err.splitlines()[0] == "error: cannot pin a new repository: repository not found: https://github.com/yzh119/BPT"
    assert not target.exists()
    assert heads


def test_a_paper_listed_twice_is_added_once(cli, tmp_path: Path) -> None:
    listing = tmp_path / "list.md"
    bullet = "* Longformer: The Long-Document Transformer [arXiv Apr. 2020] [[__pdf__](https://arxiv.org/pdf/2004.05150.pdf)]\n"
    listing.write_text("# Papers\n## Sparse\n" + bullet + "## Again\n" + bullet)
    target = tmp_path / "r.toml"
    result = cli("import", str(listing), "--into", str(target))
    assert result.code == 0, result.err
    assert f"{listing}:5: 'Longformer: The Long-Document Transformer' is listed again; kept once" in result.err
    assert target.read_text().count("[papers.") == 1
    assert cli("--registry", str(target), "validate").code == 0


def test_a_bullet_without_a_year_is_a_clear_error(cli, tmp_path: Path) -> None:
    listing = tmp_path / "list.md"
    listing.write_text("# Papers\n## Misc\n* Some Paper [Workshop] [[__pdf__](https://example.org/p.pdf)]\n")
    result = cli("import", str(listing), "--into", str(tmp_path / "r.toml"))
    assert result.code == 2
    assert result.err.strip() == f"error: {listing}:3: 'Some Paper': no year in its brackets and no arXiv id to take it from"
