"""``model.py``'s records and ``schema.py``'s models describe one registry format: kept in step.

The validated registry reaches the records through a memo in ``CACHE/registry/``; the memo is
keyed by the schema too, so data validated by an older schema is validated again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from awrepro import model, schema
from tests.registry_samples import VALID

PAIRS = [
    (schema.EnvSpec, [model.EnvSpec]),
    (schema.StaticCheck, [model.StaticCheck]),
    (schema.SmokeSpec, [model.SmokeSpec]),
    (schema.Implementation, [model.Implementation]),
    (schema.Paper, [model.Paper]),
    # One [code] table in the registry; git and archive code are records of their own.
    (schema.Code, [model.GitCode, model.ArchiveCode]),
]


def _schema_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    found = {}
    for name, field in cls.model_fields.items():
        if field.default is not PydanticUndefined:
            value = field.default
        elif field.default_factory is not None:
            value = field.default_factory()  # type: ignore[call-arg]
        else:
            continue
        found[name] = value.model_dump() if isinstance(value, BaseModel) else value
    return found


def _record_defaults(record: Any) -> dict[str, Any]:
    return {name: value._asdict() if hasattr(value, "_asdict") else value
            for name, value in record._field_defaults.items()}


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    return list(value) if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize(("validated", "records"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_records_have_the_schemas_fields_and_defaults(validated: type[BaseModel], records: list[Any]) -> None:
    record_fields = {name for record in records for name in record._fields}
    assert record_fields == set(validated.model_fields), "a field of the schema is missing from model.py (or the reverse)"
    expected = _schema_defaults(validated)
    for record in records:
        for name, default in _record_defaults(record).items():
            if name in expected:
                assert _comparable(default) == _comparable(expected[name]), f"{record.__name__}.{name}"


ARCHIVE = """
[papers.unet]
title = "U-Net"
venue = "MICCAI"
year = 2015
section = "Vision"

[papers.unet.impl.authors.code]
archive = "https://example.invalid/u-net-release-2015-10-02.tar.gz"
official = true

[papers.unet.impl.authors.smoke]
command = "true"
"""


def test_git_and_archive_code_are_records_of_their_own(tmp_path: Path, cli) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(VALID + ARCHIVE)
    common = ("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"))
    for _ in range(2):  # validated, then read from the memo
        git = json.loads(cli(*common, "show", "longformer", "--json").out)["implementations"][0]["code"]
        archive = json.loads(cli(*common, "show", "unet", "--json").out)["implementations"][0]["code"]
        assert (git["kind"], len(git["commit"]), git["sha256"]) == ("git", 40, None)
        assert (archive["kind"], archive["commit"], archive["sha256"], archive["sparse"]) == ("archive", None, None, [])
        assert "archive (unpinned)" in cli(*common, "list").out
    from awrepro import registry as registries

    loaded = registries.load(registry)
    assert isinstance(loaded.papers["longformer"].impl["allenai"].code, model.GitCode)
    assert isinstance(loaded.papers["unet"].impl["authors"].code, model.ArchiveCode)


def _memo(cache: Path) -> Path:
    (memo,) = (cache / "registry").glob("*.json")
    return memo


def test_the_memo_is_keyed_by_the_schema(tmp_path: Path, cli) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(VALID)
    cache = tmp_path / "cache"
    args = ("--registry", str(registry), "--cache-dir", str(cache), "list")
    assert cli(*args).code == 0
    memo = _memo(cache)
    data = json.loads(memo.read_text())
    assert data["schema"]

    # The memo is what a warm run reads: a title changed in it shows...
    data["papers"]["longformer"]["title"] = "Read From The Memo: a title"
    memo.write_text(json.dumps(data))
    assert "Read From The Memo" in cli(*args).out
    # ...unless another schema made it: then the registry is validated again.
    data["schema"] = "made-by-another-schema"
    memo.write_text(json.dumps(data))
    again = cli(*args)
    assert again.code == 0, again.err
    assert "Read From The Memo" not in again.out and "Longformer" in again.out
    assert json.loads(memo.read_text())["schema"] != "made-by-another-schema"


def test_commands_that_read_git_pins_pass_archive_entries_by(tmp_path: Path, cli) -> None:
    """outdated, bump and links read git fields; an archive entry has none (it once crashed them)."""
    registry = tmp_path / "registry.toml"
    registry.write_text("format = 1\n" + ARCHIVE)
    common = ("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"))
    outdated = cli(*common, "outdated", "--json")
    assert outdated.code == 0, outdated.err
    bump = cli(*common, "bump", "unet")
    assert (bump.code, bump.err.strip()) == (2, "error: unet: only a git entry has a pin to bump"), bump.err
    links = cli(*common, "links", "--json")
    assert "Traceback" not in links.err and "internal error" not in links.err, links.err
    assert "u-net-release" in links.out
