"""`list`, `show`, `--version` and the shipped registry, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from awrepro import __version__
from tests.registry_samples import VALID

SHIPPED = Path(__file__).resolve().parents[2] / "registry.toml"


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "work" / "registry.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VALID)
    return path


def test_list_prints_one_row_per_implementation(cli, tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path)
    result = cli("--cache-dir", str(cache_dir), "list")
    assert result.code == 0, result.err
    # No history yet: the Status column is empty, so it is left out; no line has trailing padding.
    assert result.out.splitlines() == [
        "ID               Paper               Venue       Code",
        "survey           A Survey of Things  arXiv 2020  no code",
        "longformer       Longformer          arXiv 2020  allenai/longformer@caefee6",
        "longformer/port                                  someone/longformer-port@0123456",
        "2 papers, 2 implementations",
    ]
    assert "\x1b[" not in result.out


def test_list_filters(cli, tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path)
    ids = lambda out: [line.split()[0] for line in out.splitlines()[1:-1]]  # noqa: E731
    assert ids(cli("--cache-dir", str(cache_dir), "list", "--section", "survey").out) == ["survey"]
    assert ids(cli("--cache-dir", str(cache_dir), "list", "--tag", "attention").out) == ["longformer", "longformer/port"]
    assert ids(cli("--cache-dir", str(cache_dir), "list", "--no-code").out) == ["survey"]
    assert ids(cli("--cache-dir", str(cache_dir), "list", "--has-code").out) == ["longformer", "longformer/port"]


def test_list_json_nests_implementations_in_papers(cli, tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path)
    result = cli("--cache-dir", str(cache_dir), "list", "--json")
    data = json.loads(result.out)
    assert [paper["id"] for paper in data] == ["survey", "longformer"]
    assert data[0]["implementations"] == [] and data[0]["no_code"] == "A survey; the authors published no code."
    first, second = data[1]["implementations"]
    assert (first["id"], first["primary"], second["id"], second["primary"]) == ("longformer", True, "longformer/port", False)
    assert first["code"] == {"kind": "git", "url": "https://github.com/allenai/longformer",
                             "commit": "caefee668e39cacdece7dd603a0bebf24df6d8ca", "sha256": None, "subdir": None,
                             "sparse": [], "official": True, "listed_as": None, "submodules": False}
    assert first["last_status"] is None
    assert set(data[1]) == {"id", "title", "authors", "venue", "year", "arxiv", "pdf", "section", "summary", "tags",
                            "no_code", "implementations"}


def test_show_prints_the_paper_and_its_implementations(cli, tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path)
    result = cli("--cache-dir", str(cache_dir), "show", "longformer/port")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "longformer: Longformer: The Long-Document Transformer",
        "  venue      arXiv 2020",
        "  arXiv      2004.05150",
        "  section    Sparse Transformers",
        "  tags       attention",
        "",
        "implementation longformer/port (port, alternative)",
        "  code       https://github.com/someone/longformer-port @ 0123456789abcdef0123456789abcdef01234567 (not the authors' code)",
        "  python     ==3.11.* (uv, install: none)",
        "  smoke      Python script (2 lines); cwd ., timeout 60 s",
        "  expects    OK",
        "  last runs  none yet (`awrepro check longformer/port`)",
        "",
        "sandbox: bubblewrap (/usr/bin/bwrap): own PID namespace, read-only filesystem, scratch HOME, "
        "network cut on request",
    ]
    as_json = json.loads(cli("--cache-dir", str(cache_dir), "show", "longformer", "--json").out)
    assert [impl["id"] for impl in as_json["implementations"]] == ["longformer", "longformer/port"]
    assert as_json["implementations"][0]["env"]["requirements"] == ["torch==2.13.0"]


def test_an_unknown_id_exits_2_and_suggests_the_closest(cli, tmp_path: Path, cache_dir: Path) -> None:
    _write(tmp_path)
    result = cli("--cache-dir", str(cache_dir), "show", "longformr")
    assert result.code == 2
    assert result.err == "error: no entry 'longformr' in registry.toml; did you mean 'longformer'?\n"
    other = cli("--cache-dir", str(cache_dir), "show", "longformer/nope")
    assert other.err == ("error: paper 'longformer' has no implementation 'nope' "
                         "(it has: longformer/allenai, longformer/port)\n")


def test_version(cli) -> None:
    result = cli("--version")
    assert (result.code, result.out) == (0, f"awrepro {__version__}\n")


def test_the_shipped_registry_is_valid_and_has_all_twenty_papers(cli, cache_dir: Path) -> None:
    result = cli("--registry", str(SHIPPED), "validate")
    assert result.code == 0, result.err
    assert result.out.endswith(": valid (20 papers, 21 implementations, 1 warning)\n")
    papers = json.loads(cli("--registry", str(SHIPPED), "--cache-dir", str(cache_dir), "list", "--json").out)
    assert len(papers) == 20
    assert [p["id"] for p in papers if not p["implementations"]] == ["ptm-survey", "multires-transformer", "multiscale-lm"]


def test_the_shipped_registry_is_found_from_any_folder(cli, tmp_path: Path, cache_dir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("--cache-dir", str(cache_dir), "list", cwd=elsewhere)
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "20 papers, 21 implementations"
