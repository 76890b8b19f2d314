"""The registry file: finding it, loading it (validated once, then cached), selecting entries.

Loading parses the TOML and validates it with the pydantic schema (``schema.py``). The
validated data is kept in ``<cache>/registry/`` with the exact text it came from, awrepro's
version and a digest of the schema and the records it fills, so the next run of an unchanged
registry skips TOML parsing and pydantic, and a changed schema never reads an old memo.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from awrepro import __version__
from awrepro.constants import ENV_REGISTRY, REGISTRY_FILENAME
from awrepro.errors import InvalidRegistryError, UsageError
from awrepro.model import Implementation, Paper, papers_from_dict


class Entry:
    """One checkable unit: a paper with one of its implementations, or a paper without code."""

    __slots__ = ("paper_id", "paper", "name", "impl", "primary")

    def __init__(self, paper_id: str, paper: Paper, name: str | None, primary: bool) -> None:
        self.paper_id = paper_id
        self.paper = paper
        self.name = name
        self.impl: Implementation | None = paper.impl[name] if name else None
        self.primary = primary

    @property
    def id(self) -> str:
        """``paper`` for a primary implementation or a paper without code, else ``paper/impl``."""
        return self.paper_id if self.primary else f"{self.paper_id}/{self.name}"

    @property
    def full_id(self) -> str:
        return f"{self.paper_id}/{self.name}" if self.name else self.paper_id

    @property
    def draft(self) -> bool:
        """Not checkable yet: no smoke test, or a paper whose code nobody has named."""
        return self.impl.draft if self.impl else self.paper.draft

    def why_not_checked(self) -> str:
        """Why ``check`` skips this entry before fetching anything ('' when it does not)."""
        if self.impl is None:
            if self.paper.no_code:
                return f"no code: {self.paper.no_code}"
            listed = f"the list links {self.paper.listed_as}" if self.paper.listed_as else "the list links no code"
            return f"draft: {listed}; add an [impl.NAME] with its repository, or no_code"
        if self.impl.draft:
            return "draft: no smoke test yet; add a [smoke] table"
        return ""

    def __repr__(self) -> str:
        return f"<Entry {self.id}>"


class LoadedRegistry:
    """A validated registry and the file it came from."""

    def __init__(self, path: Path, papers: dict[str, Paper], text: str) -> None:
        self.path = path
        self.papers = papers
        self.text = text

    @property
    def root(self) -> Path:
        """Folder that relative paths in the registry (patches) start from."""
        return self.path.parent

    def entries(self) -> list[Entry]:
        """Every implementation, and every paper without code, in registry order."""
        found: list[Entry] = []
        for paper_id, paper in self.papers.items():
            if not paper.impl:
                found.append(Entry(paper_id, paper, None, primary=True))
            for index, name in enumerate(paper.impl):
                found.append(Entry(paper_id, paper, name, primary=index == 0))
        return found

    def select(self, ids: list[str]) -> list[Entry]:
        """Entries named on the command line: ``paper`` (its primary), ``paper/impl`` or ``paper/*``."""
        chosen: dict[str, Entry] = {}  # by full id: `demo` and `demo/main` may name one entry
        for raw in ids:
            for entry in self._resolve(raw):
                chosen.setdefault(entry.full_id, entry)
        return list(chosen.values())

    def _resolve(self, raw: str) -> list[Entry]:
        paper_id, _, name = raw.partition("/")
        paper = self.papers.get(paper_id)
        if paper is None:
            raise UsageError(f"no entry {raw!r} in {display_path(self.path)}{_suggest(paper_id, list(self.papers))}")
        entries = [e for e in self.entries() if e.paper_id == paper_id]
        if not name:
            return entries[:1]
        if name == "*":
            return entries
        if name not in paper.impl:
            known = ", ".join(f"{paper_id}/{n}" for n in paper.impl) or "none"
            raise UsageError(f"paper {paper_id!r} has no implementation {name!r} (it has: {known})")
        return [e for e in entries if e.name == name]


def _suggest(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if not close:
        return "; `awrepro list` shows every id"
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


# ---------------------------------------------------------------- discovery


def shipped_registry() -> Path:
    """The registry that ships inside the package (or, in a source checkout, the top-level one)."""
    packaged = Path(__file__).parent / "data" / "registry.toml"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "registry.toml"


def discover(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """``--registry``, else ``$AWREPRO_REGISTRY``, else ./registry.toml or a parent's, else shipped."""
    if explicit is not None:
        return explicit
    if environ.get(ENV_REGISTRY):
        return Path(environ[ENV_REGISTRY])
    for folder in (cwd, *cwd.parents):
        candidate = folder / REGISTRY_FILENAME
        if candidate.is_file():
            return candidate
    return shipped_registry()


# ---------------------------------------------------------------- loading


def display_path(path: Path) -> str:
    """A path as the user would write it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, RuntimeError, OSError):  # outside the folder, or a loop of symbolic links
        return str(path)


def load(path: Path, cache_root: Path | None = None, *, keep_memo: bool = True) -> LoadedRegistry:
    """Read and validate a registry; raise InvalidRegistryError listing every problem.

    With ``cache_root``, a registry whose exact text was validated before is not validated again;
    a newly validated one is kept there unless ``keep_memo`` is False (a cache that cannot be written).
    """
    shown = display_path(path)
    text = read_text(path, shown)
    memo = _memo_path(cache_root, path) if cache_root else None
    papers = _read_memo(memo, text) if memo else None
    if papers is None:
        papers = _parse_and_validate(text, shown)
        if memo and keep_memo:
            _write_memo(memo, text, papers)
    return LoadedRegistry(path, papers_from_dict(papers), text)


MAX_BYTES = 32 * 1024 * 1024  # the shipped registry is 60 KB; 5,000 papers take about 3 MB


def read_text(path: Path, shown: str) -> str:
    """The registry's text: a regular file of at most MAX_BYTES, read without ever blocking.

    A FIFO would block ``open`` forever and ``/dev/zero`` never ends: both are refused by what
    ``stat`` says before a byte is read, and the open does not wait (O_NONBLOCK)."""
    import stat

    def refuse(reason: str) -> InvalidRegistryError:
        return InvalidRegistryError([f"{shown}: {reason}"])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise refuse("no such registry file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse("cannot read the registry: a loop of symbolic links") from None
        raise refuse(f"cannot read the registry: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which refuses a folder itself
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket")
            raise refuse(f"not a registry file: it is {kind}, not a regular file")
        if info.st_size > MAX_BYTES:
            raise refuse(f"the registry is {info.st_size} bytes, over the {MAX_BYTES}-byte limit")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_BYTES + 1)  # bounded: a file that grows while read cannot grow memory
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise refuse(f"the registry grew over the {MAX_BYTES}-byte limit while it was read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"cannot read the registry: not UTF-8 text (byte {exc.start})") from None


def validate_text(text: str, shown: str) -> dict[str, Any]:
    """Parse and validate registry text (named ``shown`` in messages); raise InvalidRegistryError."""
    return _parse_and_validate(text, shown)


def _parse_and_validate(text: str, shown: str) -> dict[str, Any]:
    import tomllib

    from awrepro import schema  # pydantic: only when the registry is new or changed

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRegistryError([_toml_error_line(shown, exc)]) from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise InvalidRegistryError([f"{shown}: invalid TOML: arrays or inline tables nested too deep"]) from None
    papers, problems = schema.validate(data, text, shown)
    if problems or papers is None:
        raise InvalidRegistryError(problems)
    return papers


def _toml_error_line(shown: str, exc: Exception) -> str:
    # tomllib puts "(at line L, column C)" at the end of its message.
    message = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if not found:
        return f"{shown}: invalid TOML: {message}"
    reason = message[: found.start()].strip()
    if "Unescaped '\\'" in reason:  # a regular expression (or a path) in a "..." string
        reason += ("; in a double-quoted string a backslash starts an escape: write a regular expression as a "
                   "single-quoted literal string, which keeps it as it is (expect = 'OK \\(1, 4\\)', or "
                   "'''...''' across lines)")
    return f"{shown}:{found.group(1)}:{found.group(2)}: invalid TOML: {reason}"


def _memo_path(cache_root: Path, path: Path) -> Path:
    # One memo per registry file; it holds the text it was made from, compared on reading.
    name = str(path.resolve()).strip("/").replace("%", "%25").replace("/", "%")
    return cache_root / "registry" / f"{name}.json"


def _read_memo(path: Path, text: str) -> dict[str, Any] | None:
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(memo, dict) or memo.get("text") != text or memo.get("awrepro") != __version__ \
            or memo.get("schema") != _schema_digest():
        return None
    papers = memo.get("papers")
    return papers if isinstance(papers, dict) else None


@functools.cache
def _schema_digest() -> str:
    """What the memo's data depends on besides the text: the schema that validated it and the
    records built from it (a source checkout changes them without a new version)."""
    import zlib  # already loaded by the interpreter's start-up

    digest = 0
    for name in ("schema.py", "model.py"):
        try:
            digest = zlib.crc32((Path(__file__).parent / name).read_bytes(), digest)
        except OSError:  # an install without sources: the version alone keys the memo
            return "?"
    return f"{digest:08x}"


def _write_memo(path: Path, text: str, papers: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs the next run a validation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"awrepro": __version__, "schema": _schema_digest(), "text": text,
                                             "papers": papers}), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass


# ---------------------------------------------------------------- deeper checks


def problems_beyond_schema(registry: LoadedRegistry) -> tuple[list[str], list[str]]:
    """What a schema alone cannot see. Returns (errors, warnings), one line each."""
    from packaging.requirements import InvalidRequirement, Requirement

    from awrepro import tomlpos

    shown = display_path(registry.path)
    errors: list[str] = []
    warnings: list[str] = []

    def at(loc: tuple[str, ...], message: str) -> str:
        line = tomlpos.find_line(registry.text, loc)
        where = f"{shown}:{line}" if line else shown
        return f"{where}: {'.'.join(loc)}: {message}"

    sources: dict[tuple[str, str], str] = {}
    arxiv_ids: dict[str, str] = {}
    for paper_id, paper in registry.papers.items():
        if paper.draft:
            warnings.append(at(("papers", paper_id), Entry(paper_id, paper, None, primary=True).why_not_checked()))
        if paper.arxiv:
            if paper.arxiv in arxiv_ids:
                errors.append(at(("papers", paper_id, "arxiv"), f"arXiv id {paper.arxiv} is also used by papers.{arxiv_ids[paper.arxiv]}"))
            else:
                arxiv_ids[paper.arxiv] = paper_id
        for name, impl in paper.impl.items():
            base = ("papers", paper_id, "impl", name)
            key = (impl.code.url.rstrip("/").removesuffix(".git"), impl.code.subdir or "")
            full = f"{paper_id}/{name}"
            if key in sources:
                errors.append(at((*base, "code"), f"same repository and subdir as {sources[key]}; give it another subdir or merge the entries"))
            else:
                sources[key] = full
            if impl.draft:
                warnings.append(at(base, "draft: no smoke test yet, so `check` skips it; add a [smoke] table"))
            if impl.code.pin is None:
                warnings.append(at((*base, "code", "archive"), "unpinned archive: no sha256, so `check` skips it; add sha256 once the file is known"))
            for index, patch in enumerate(impl.env.patches):
                if not (registry.root / patch).is_file():
                    errors.append(at((*base, "env", "patches", str(index)), f"patch file {patch} does not exist (paths start at the registry's folder)"))
            for field in ("requirements", "no_deps"):
                for index, req in enumerate(getattr(impl.env, field)):
                    try:
                        Requirement(req)
                    except InvalidRequirement:
                        errors.append(at((*base, "env", field, str(index)), f"{req!r} is not a valid requirement like 'numpy<1.24' (PEP 508)"))
    return errors, warnings
