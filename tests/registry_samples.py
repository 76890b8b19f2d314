"""A small valid registry that tests copy and break, and a registry broken in every way the schema can see."""

from __future__ import annotations

import copy
import datetime
import functools
import json
from typing import Any

VALID = '''\
format = 1

[defaults.env]
python = "==3.11.*"

[defaults.smoke]
timeout = 60

[papers.survey]
title = "A Survey of Things: Everything at Once"
venue = "arXiv"
year = 2020
arxiv = "2003.08271"
section = "Survey"
no_code = "A survey; the authors published no code."

[papers.longformer]
title = "Longformer: The Long-Document Transformer"
venue = "arXiv"
year = 2020
arxiv = "2004.05150"
section = "Sparse Transformers"
tags = ["attention"]

[papers.longformer.impl.allenai]
description = "The authors' code"

[papers.longformer.impl.allenai.code]
git = "https://github.com/allenai/longformer"
commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"
official = true

[papers.longformer.impl.allenai.env]
requirements = ["torch==2.13.0"]

[papers.longformer.impl.allenai.smoke]
command = "python -c 'import longformer'"

[papers.longformer.impl.port.code]
git = "https://github.com/someone/longformer-port"
commit = "0123456789abcdef0123456789abcdef01234567"

[papers.longformer.impl.port.smoke]
script = """
import longformer_port
print("OK")
"""
expect = "OK"
'''


# A value of every TOML kind, and None: the key removed. Dict keys that are not ids, and NUL-free.
WRONG_VALUES: tuple[Any, ...] = ("text", "", 7, -5, 10**26, 1.5, True, [7], ["Bad Key", 7], {"key": 7},
                                 {"Bad Key": "x"}, datetime.date(2020, 1, 1), None)


def hostile_registry() -> tuple[str, int]:
    """VALID's longformer paper copied once per mistake: every key of every table of the schema
    (found in ``schema.py`` itself, so a new key is covered too) given each kind of TOML value or
    removed, and an unknown key in each table; plus mistakes above the papers. Returns the
    registry's text and how many papers it has."""
    import tomllib

    from pydantic import BaseModel

    from awrepro import schema

    data = tomllib.loads(VALID)
    longformer = data["papers"].pop("longformer")
    longformer["impl"]["allenai"]["smoke"]["static"] = {"reason": "legacy", "command": "true"}
    impl = ("impl", "allenai")
    tables: dict[tuple[str, ...], type[BaseModel]] = {
        (): schema.Paper, impl: schema.Implementation, (*impl, "code"): schema.Code, (*impl, "env"): schema.EnvSpec,
        (*impl, "smoke"): schema.SmokeSpec, (*impl, "smoke", "static"): schema.StaticCheck}
    papers: dict[str, Any] = {}
    for where, model in tables.items():
        for key in [*model.model_fields, "bogus"]:
            for value in WRONG_VALUES:
                paper = copy.deepcopy(longformer)
                table = functools.reduce(lambda node, part: node[part], where, paper)
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
                papers[f"p{len(papers)}"] = paper
    data.update({"format": "1", "bogus": 1, "defaults": {"env": 7, "bogus": 1}, "papers": {"x": 7, **papers}})
    return "\n".join(_toml_tables((), data)) + "\n", len(papers)


def _toml_tables(path: tuple[str, ...], table: dict[str, Any]) -> list[str]:
    """``table`` as TOML: its values, then each table in it under a header of its own."""
    lines = [f"[{'.'.join(map(_toml_key, path))}]"] if path else []
    lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in table.items() if not isinstance(value, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += _toml_tables((*path, key), value)
    return lines


def _toml_key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() and key.isascii() else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, datetime.date)):
        return value.isoformat() if isinstance(value, datetime.date) else repr(value)
    if isinstance(value, list):
        return f"[{', '.join(map(_toml_value, value))}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a JSON string is a TOML basic string
