"""The registry's domain objects: immutable records, built only from validated data.

pydantic checks the registry at the edge (``schema.py``); inside awrepro entries are these
plain NamedTuples. Keeping pydantic out of them lets a warm ``fetch`` or ``list`` start without
importing it (about 150 ms): the validated data is cached as JSON (see ``registry.py``).
NamedTuples rather than dataclasses because they cost a seventh as much to define, and
defining them is part of every start-up. Their dict defaults are never mutated.
No ``from __future__ import annotations`` here: NamedTuple would compile each string annotation.
"""

import re
from typing import Any, Literal, NamedTuple


def _repo_name(url: str) -> str:
    """The repository's own name (``longformer`` for .../allenai/longformer.git)."""
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    name = re.sub(r"(\.git|\.tar\.gz|\.tgz|\.tar|\.zip)$", "", tail)
    return name if name not in ("", ".", "..") else "code"  # a folder name, never a way up


class GitCode(NamedTuple):
    """Code in a git repository, pinned to a full commit."""

    git: str
    commit: str
    subdir: str | None = None
    sparse: tuple[str, ...] = ()
    official: bool = False
    listed_as: str | None = None
    submodules: bool = False

    @property
    def kind(self) -> Literal["git"]:
        return "git"

    @property
    def url(self) -> str:
        return self.git

    @property
    def pin(self) -> str:
        return self.commit

    @property
    def repo_name(self) -> str:
        return _repo_name(self.git)

    def short(self) -> str:
        """``owner/repo@1a2b3c4``."""
        parts = re.split(r"[/:]", re.sub(r"\.git$", "", self.git.rstrip("/")))
        return f"{'/'.join(parts[-2:])}@{self.commit[:7]}"


class ArchiveCode(NamedTuple):
    """Code in an archive file, pinned by its sha256 (an archive without one is never trusted)."""

    archive: str
    sha256: str | None = None
    subdir: str | None = None
    official: bool = False
    listed_as: str | None = None
    max_unpacked_mib: int | None = None  # None: archives.DEFAULT_MAX_UNPACKED_MIB
    max_members: int | None = None  # None: archives.DEFAULT_MAX_MEMBERS

    @property
    def kind(self) -> Literal["archive"]:
        return "archive"

    @property
    def url(self) -> str:
        return self.archive

    @property
    def pin(self) -> str | None:
        return self.sha256

    @property
    def repo_name(self) -> str:
        return _repo_name(self.archive)

    def short(self) -> str:
        return "archive" if self.sha256 else "archive (unpinned)"


Code = GitCode | ArchiveCode


class EnvSpec(NamedTuple):
    python: str = "==3.11.*"
    backend: Literal["uv", "pip"] = "uv"
    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    install: Literal["none", "editable", "normal"] = "none"
    no_deps: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    patches: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    vars: dict[str, str] = {}
    exclude_newer: str | None = None  # a date, or "commit" (see envs.cutoff)
    exclude_newer_exempt: tuple[str, ...] = ()


class StaticCheck(NamedTuple):
    reason: str
    python: str | None = None
    command: str | None = None
    script: str | None = None
    cwd: str = "."
    timeout: int | None = None


class SmokeSpec(NamedTuple):
    command: str | None = None
    script: str | None = None
    cwd: str = "."
    timeout: int = 600
    gpu: bool = False
    network: bool = True  # False: the smoke test runs with the network cut (with bubblewrap)
    expect: str | None = None
    level: str = "smoke"  # one of results.SMOKE_LEVELS: what a pass shows
    static: StaticCheck | None = None

    @property
    def runnable(self) -> bool:
        return bool(self.command or self.script)


class Implementation(NamedTuple):
    code: Code
    smoke: SmokeSpec
    env: EnvSpec = EnvSpec()
    description: str | None = None
    notes: tuple[str, ...] = ()  # what it took to make it run here: pins changed, patches, shims

    @property
    def draft(self) -> bool:
        """No smoke test yet (the schema requires a body for every smoke table it accepts)."""
        return not self.smoke.runnable and self.smoke.static is None


class Paper(NamedTuple):
    title: str
    venue: str
    year: int
    section: str
    authors: tuple[str, ...] = ()
    arxiv: str | None = None
    pdf: str | None = None
    summary: str | None = None
    tags: tuple[str, ...] = ()
    no_code: str | None = None
    listed_as: str | None = None
    impl: dict[str, Implementation] = {}

    @property
    def draft(self) -> bool:
        """No implementation and no reason why: nobody has said which code it is yet."""
        return not self.impl and not self.no_code


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def code_from_dict(data: dict[str, Any]) -> Code:
    """The schema has one ``code`` table; its git and archive fields go to their own records."""
    record = GitCode if data.get("git") else ArchiveCode
    return record(**_tuples({key: value for key, value in data.items() if key in record._fields}))


def implementation_from_dict(data: dict[str, Any]) -> Implementation:
    smoke = dict(data["smoke"] or {})  # none: a draft
    static = smoke.pop("static", None)
    return Implementation(
        code=code_from_dict(data["code"]),
        env=EnvSpec(**_tuples(data["env"])),
        smoke=SmokeSpec(**smoke, static=StaticCheck(**static) if static else None),
        description=data.get("description"),
        notes=tuple(data.get("notes", ())),
    )


def papers_from_dict(papers: dict[str, Any]) -> dict[str, Paper]:
    """Build the papers from validated (``model_dump``-shaped) data."""
    built: dict[str, Paper] = {}
    for paper_id, data in papers.items():
        fields = _tuples({k: v for k, v in data.items() if k != "impl"})
        impls = {name: implementation_from_dict(impl) for name, impl in data.get("impl", {}).items()}
        built[paper_id] = Paper(**fields, impl=impls)
    return built
