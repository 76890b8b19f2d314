"""The registry's schema (pydantic, strict) and its error messages.

Every problem is reported at once, one line each, as
``FILE:LINE: papers.ID.impl.NAME.key: reason``; see ``docs/registry-format.md``.
The validated data becomes the plain records of ``model.py``.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from awrepro import tomlpos
from awrepro.constants import REGISTRY_FORMAT, SCP_LIKE_URL
from awrepro.results import SMOKE_LEVELS

SLUG_RE = r"^[a-z0-9]+(-[a-z0-9]+)*$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_RE)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")  # always fullmatch: `$` would let a trailing newline through
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_ARXIV_RE = re.compile(r"\d{4}\.\d{4,5}")
_VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TIMEOUT = 7 * 24 * 3600  # a week: beyond it a timeout is a typo, not a plan
_SCP_LIKE_RE = re.compile(SCP_LIKE_URL)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIST_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_GIT_SCHEMES = ("https://", "ssh://", "git://", "file://")


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _relative_path(value: str, what: str) -> str:
    """Refuse paths that could leave the checkout: absolute, or with a '..' part."""
    parts = Path(value).parts
    if value.startswith(("/", "\\")) or Path(value).is_absolute():
        raise _custom("path", f"{what} must be a relative path, not {value!r}")
    if ".." in parts:
        raise _custom("path", f"{what} must stay inside the checkout: '..' is not allowed")
    return value


def _sparse_path(value: str) -> str:
    _relative_path(value.removeprefix("!"), "a sparse path")  # "!" excludes: checked, and kept
    return value


def _patch_path(value: str) -> str:
    return _relative_path(value, "a patch path")


def _var_name(value: str) -> str:
    if not _VAR_NAME_RE.fullmatch(value):
        raise _custom("var", f"{value!r} is not a valid environment variable name")
    return value


# Checked one by one, so that every bad item is reported (at its own index or key), not only the first.
SparsePath = Annotated[str, StringConstraints(min_length=1), AfterValidator(_sparse_path)]
PatchPath = Annotated[str, StringConstraints(min_length=1), AfterValidator(_patch_path)]
VarName = Annotated[str, AfterValidator(_var_name)]


def _timeout(value: int) -> int:
    if value > MAX_TIMEOUT:
        raise _custom("timeout", f"must be at most {MAX_TIMEOUT} seconds (7 days), got {value}")
    return value


Timeout = Annotated[int, Field(gt=0), AfterValidator(_timeout)]
# An archive's unpacked size (MiB) and member count may be raised per entry, up to where a
# number stops being a plan: 1 TiB, 100 million members.
UnpackedMib = Annotated[int, Field(gt=0, le=1024 * 1024)]
MemberCount = Annotated[int, Field(gt=0, le=100_000_000)]


def _python_constraint(value: str) -> str:
    """A PEP 440 specifier (``==3.11.*``, ``>=3.9,<3.12``), or a bare version (``2.7``)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    spec = f"=={value}.*" if re.fullmatch(r"\d+(\.\d+)?", value.strip()) else value
    message = f"{value!r} is not a version constraint like '==3.11.*' or '>=3.9,<3.12'"
    if any(not part.strip() for part in spec.split(",")):  # blank, or ",,,": packaging reads it as "any"
        raise _custom("python", message)
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise _custom("python", message) from None
    return value


def _date(value: str, what: str) -> str:
    from datetime import date

    try:
        if _DATE_RE.fullmatch(value):
            date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise _custom("date", f"{what} must be a date like '2019-06-01', not {value!r}")


def _exempt(value: str) -> str:
    """``NAME`` (no date bound at all) or ``NAME=YYYY-MM-DD`` (a later bound of its own)."""
    name, sep, when = value.partition("=")
    if not _DIST_NAME_RE.fullmatch(name):
        raise _custom("exempt", f"{value!r} is not a distribution name, or NAME=YYYY-MM-DD")
    if sep:
        _date(when, f"the date of {name}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Code(_Strict):
    """Where an implementation's code comes from: a git commit or an archive."""

    git: str | None = None
    commit: str | None = None
    subdir: str | None = None
    sparse: list[SparsePath] = []
    official: bool = False
    listed_as: str | None = None
    submodules: bool = False
    archive: str | None = None
    sha256: str | None = None
    max_unpacked_mib: UnpackedMib | None = None
    max_members: MemberCount | None = None

    @field_validator("git")
    @classmethod
    def _git_url(cls, value: str) -> str:
        if not (value.startswith(_GIT_SCHEMES) or _SCP_LIKE_RE.match(value)):
            raise _custom("url", f"{value!r} is not an allowed git URL: use https://, ssh://, git:// or user@host:path")
        if value.startswith("-") or any(c.isspace() or not c.isprintable() for c in value):
            # git would read "-u@x:y" as options
            raise _custom("url", f"{value!r} is not a git URL: it starts with '-' or holds spaces or control characters")
        return value

    @field_validator("commit")
    @classmethod
    def _full_commit(cls, value: str) -> str:
        if not _COMMIT_RE.fullmatch(value):
            raise _custom("commit", "must be a full 40-character commit hash (tags and branches move)")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not _SHA256_RE.fullmatch(value):
            raise _custom("sha256", "must be 64 lowercase hex digits")
        return value

    @field_validator("archive", "listed_as")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise _custom("url", f"{value!r} must be an http(s) URL")
        return value

    @field_validator("subdir")
    @classmethod
    def _subdir(cls, value: str) -> str:
        return _relative_path(value, "subdir")

    @model_validator(mode="after")
    def _one_source(self) -> Code:
        if self.git and self.archive:
            raise _custom("source", "give either git + commit or archive, not both")
        if self.git and not self.commit:
            raise _custom("source", "a git source needs commit = the full 40-character hash")
        if self.commit and not self.git:
            raise _custom("source", "commit needs git = the repository URL")
        if not self.git and not self.archive:
            raise _custom("source", "give git + commit, or archive (+ sha256)")
        if self.sha256 and not self.archive:
            raise _custom("source", "sha256 belongs to an archive source")
        if (self.max_unpacked_mib or self.max_members) and not self.archive:
            raise _custom("source", "max_unpacked_mib and max_members belong to an archive source")
        if self.sparse and not self.git:
            raise _custom("source", "sparse paths need a git source")
        return self


class EnvSpec(_Strict):
    """The environment an implementation needs."""

    python: NonEmpty = "==3.11.*"
    backend: Literal["uv", "pip"] = "uv"
    requirements: list[NonEmpty] = []
    requirements_file: str | None = None
    install: Literal["none", "editable", "normal"] = "none"
    no_deps: list[NonEmpty] = []
    find_links: list[NonEmpty] = []
    index_url: str | None = None
    extra_index_urls: list[NonEmpty] = []
    patches: list[PatchPath] = []
    steps: list[NonEmpty] = []
    vars: dict[VarName, str] = Field(default_factory=dict)
    exclude_newer: str | None = None  # "YYYY-MM-DD", or "commit" for the pinned commit's date
    exclude_newer_exempt: list[NonEmpty] = []  # "NAME" or "NAME=YYYY-MM-DD"

    @field_validator("exclude_newer")
    @classmethod
    def _exclude_newer(cls, value: str) -> str:
        return value if value == "commit" else _date(value, "exclude_newer")

    @field_validator("exclude_newer_exempt")
    @classmethod
    def _exclude_newer_exempt(cls, value: list[str]) -> list[str]:
        for item in value:
            _exempt(item)
        return value

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        return _python_constraint(value)

    @field_validator("requirements_file")
    @classmethod
    def _req_file(cls, value: str) -> str:
        return _relative_path(value, "requirements_file")



class StaticCheck(_Strict):
    """A check for code that cannot run here: byte-compiling, files present."""

    reason: NonEmpty
    python: str | None = None
    command: NonEmpty | None = None
    script: NonEmpty | None = None
    cwd: str = "."
    timeout: Timeout | None = None

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str) -> str:
        return _relative_path(value, "cwd")

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        return _python_constraint(value)

    @model_validator(mode="after")
    def _one_body(self) -> StaticCheck:
        if bool(self.command) == bool(self.script):
            raise _custom("body", "give exactly one of command or script")
        return self


class SmokeSpec(_Strict):
    """How to tell that an implementation runs."""

    command: NonEmpty | None = None
    script: NonEmpty | None = None
    cwd: str = "."
    timeout: Timeout = 600
    gpu: bool = False
    network: bool = True
    expect: str | None = None
    level: str = "smoke"  # what a pass shows: "smoke" (a forward pass) or "import" (the model modules import)
    static: StaticCheck | None = None

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in SMOKE_LEVELS:
            raise _custom("level", f"must be one of {', '.join(map(repr, SMOKE_LEVELS))}, not {value!r}")
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str) -> str:
        return _relative_path(value, "cwd")

    @field_validator("expect")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise _custom("regex", f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _not_both(self) -> SmokeSpec:
        if self.command and self.script:
            raise _custom("body", "give command or script, not both")
        return self


class Implementation(_Strict):
    """One implementation of a paper: code, environment, smoke test."""

    description: str | None = None
    notes: list[NonEmpty] = []
    code: Code
    env: EnvSpec = EnvSpec()
    smoke: SmokeSpec | None = None  # none yet: a draft (``validate`` warns, ``check`` skips it)

    @model_validator(mode="after")
    def _has_check(self) -> Implementation:
        if self.smoke is not None and not (self.smoke.command or self.smoke.script or self.smoke.static):
            raise _custom("smoke", "smoke needs a command, a script or a [static] check")
        if self.env.exclude_newer == "commit" and not self.code.git:
            raise _custom("exclude_newer", "exclude_newer = \"commit\" needs a git source; give a date for an archive")
        return self


class Paper(_Strict):
    """One paper of the list, with its implementations (the primary first)."""

    title: NonEmpty
    authors: list[NonEmpty] = []
    venue: NonEmpty
    year: Annotated[int, Field(ge=1900, le=2100)]
    arxiv: str | None = None
    pdf: str | None = None
    section: NonEmpty
    summary: str | None = None
    tags: list[Slug] = []
    no_code: NonEmpty | None = None
    listed_as: str | None = None  # the list's code link when no implementation names a repository yet
    impl: dict[Slug, Implementation] = Field(default_factory=dict)

    @field_validator("arxiv")
    @classmethod
    def _arxiv(cls, value: str) -> str:
        if not _ARXIV_RE.fullmatch(value):
            raise _custom("arxiv", f"{value!r} is not an arXiv id like 2004.05150")
        return value

    @field_validator("pdf", "listed_as")
    @classmethod
    def _pdf(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise _custom("url", f"{value!r} must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _code_or_reason(self) -> Paper:
        # Neither implementations nor no_code: a draft, whose code nobody has found yet.
        if self.impl and self.no_code:
            raise _custom("impl", "no_code is only for papers without implementations")
        if self.impl and self.listed_as:
            raise _custom("impl", "a paper's listed_as is only for papers without implementations; "
                                  "put it in the code table of the implementation it names")
        return self


class Defaults(_Strict):
    env: EnvSpec = EnvSpec()
    smoke: SmokeSpec = SmokeSpec()


class Registry(_Strict):
    format: int
    defaults: Defaults = Defaults()
    papers: dict[Slug, Paper]

    @field_validator("format")
    @classmethod
    def _format(cls, value: int) -> int:
        if value != REGISTRY_FORMAT:
            raise _custom(
                "format",
                f"format {value} is not known to this awrepro (it reads format {REGISTRY_FORMAT}); "
                "upgrade awrepro",
            )
        return value


MAX_DEPTH = 16  # the format nests tables and arrays 7 deep at most; far below Python's recursion limit


def hostile_values(data: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Values no field may hold, found in one iterative walk: NUL bytes (in keys too), and
    nesting deeper than the format has (pydantic and model_dump recurse)."""
    found: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if len(loc) > MAX_DEPTH:
            found.append((loc[:MAX_DEPTH], f"nested more than {MAX_DEPTH} levels deep"))
            continue
        if isinstance(value, str):
            if "\0" in value:
                found.append((loc, "contains a NUL byte"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\0" in key:
                    found.append((loc, "a key contains a NUL byte"))
                else:
                    stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, str(index)), item) for index, item in enumerate(value))
    return sorted(set(found))


def validate(data: dict[str, Any], text: str, shown: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Validate parsed TOML; return (the papers as plain data, []) or (None, every problem)."""
    hostile = hostile_values(data)
    if hostile:
        return None, _unique([_located(loc, message, text, shown) for loc, message in hostile])
    try:
        registry = Registry.model_validate(_apply_defaults(data))
    except ValidationError as exc:
        return None, _unique([_format_one(e, text, shown) for e in exc.errors()])
    return registry.model_dump(mode="json")["papers"], []


def _apply_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill each implementation's env and smoke tables from [defaults].

    Invalid defaults are left unmerged: validating the registry reports them at their own place.
    """
    defaults = data.get("defaults")
    papers = data.get("papers")
    if not isinstance(defaults, dict) or not isinstance(papers, dict):
        return data
    try:
        Defaults.model_validate(defaults)
    except ValidationError:
        return data
    env_defaults = defaults.get("env", {})
    smoke_defaults = defaults.get("smoke", {})
    merged_papers: dict[str, Any] = {}
    for paper_id, paper in papers.items():
        if isinstance(paper, dict) and isinstance(paper.get("impl"), dict):
            impls = {name: _merge_impl(impl, env_defaults, smoke_defaults) for name, impl in paper["impl"].items()}
            paper = {**paper, "impl": impls}
        merged_papers[paper_id] = paper
    return {**data, "papers": merged_papers}


def _merge_impl(impl: Any, env_defaults: dict[str, Any], smoke_defaults: dict[str, Any]) -> Any:
    if not isinstance(impl, dict):
        return impl
    merged = dict(impl)
    for key, defaults in (("env", env_defaults), ("smoke", smoke_defaults)):
        if key == "smoke" and key not in impl:
            continue  # no smoke test yet: a draft stays one, defaults do not make it a smoke test
        own = impl.get(key, {})
        if not isinstance(own, dict):
            continue
        table = {**defaults, **own}
        if isinstance(defaults.get("vars"), dict) and isinstance(own.get("vars"), dict):
            table["vars"] = {**defaults["vars"], **own["vars"]}
        if table or key in impl:
            merged[key] = table
    return merged


# pydantic's own error types, in the words of awrepro's other messages. Every type the schema
# can raise is here (a test feeds each field every kind of TOML value); the schema's own checks
# (PydanticCustomError) already speak plainly and pass through.
_PLAIN = {
    "missing": "missing required key {key!r}",
    "extra_forbidden": "unknown key {key!r}{known}",
    "string_type": "must be a string, got {got}",
    "int_type": "must be an integer, got {got}",
    "bool_type": "must be true or false, got {got}",
    "list_type": "must be an array, got {got}",
    "dict_type": "must be a table, got {got}",
    "model_type": "must be a table, got {got}",
    "greater_than": "must be greater than {gt}, got {input}",
    "greater_than_equal": "must be at least {ge}, got {input}",
    "less_than_equal": "must be at most {le}, got {input}",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must be a lowercase slug like 'long-context', not {input}",
    "literal_error": "must be {expected}, not {input}",
}
_BAD_ID = "not a valid id: use lowercase letters and digits, joined by single '-'"


def _format_one(error: ErrorDetails, text: str, shown: str) -> str:
    loc = tuple(map(str, error["loc"]))
    kind = error["type"]
    if loc and loc[-1] == "[key]":  # a table's key failed: the key itself is the problem
        loc = loc[:-1]
        message = _BAD_ID if kind == "string_pattern_mismatch" else error["msg"]
    elif kind in _PLAIN:
        value = error.get("input")
        known = _known_keys(loc) if kind == "extra_forbidden" else ""
        message = _PLAIN[kind].format(key=loc[-1] if loc else "", known=known, got=_toml_kind(value),
                                      input=_shown(value), **error.get("ctx", {}))
    else:
        message = error["msg"]
    return _located(loc, message, text, shown)


def _toml_kind(value: Any) -> str:
    """What a TOML value is, in TOML's words."""
    import datetime

    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (list, "an array"),
             (dict, "a table"), ((datetime.date, datetime.time), "a date or time"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _shown(value: Any) -> str:
    """The value given, as the registry wrote it: a string quoted (and cut), a number, else its kind."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _toml_kind(value)


def _located(loc: tuple[str, ...], msg: str, text: str, shown: str) -> str:
    line = tomlpos.find_line(text, loc)
    where = f"{shown}:{line}" if line else shown
    dotted = ".".join(part if part.isprintable() else part.encode("unicode_escape").decode() for part in loc)
    return f"{where}: {dotted or '(top level)'}: {msg}"


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    """The schema's table that holds the key at ``loc`` (papers.X.impl.Y.code.KEY: Code)."""
    import typing

    node: Any = Registry
    for part in loc[:-1]:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            if field is None:
                return None
            node = field.annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]  # ``part`` is one of the table's own keys
        else:
            return None
        tables = [arg for arg in typing.get_args(node) if arg is not type(None)]
        if typing.get_origin(node) in (typing.Union, types.UnionType) and len(tables) == 1:
            node = tables[0]  # ``X | None``
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _known_keys(loc: tuple[str, ...]) -> str:
    """`` (did you mean 'year'?)``, or the table's keys when none is close."""
    import difflib

    model = _model_at(loc)
    if model is None:
        return ""
    fields = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(fields)})"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


