"""Read a failed try's error and make one change to the candidate entry, with a note saying why.

Each rule is general: it reads the installer's or the interpreter's own message, never the
name of a repository. A rule that has nothing to change returns None, and the loop stops.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from awrepro.infer.names import TORCH_FAMILY, distribution_for
from awrepro.infer.resolve import (
    Requirements,
    forward_date,
    newest_release,
    normalize,
    release_at,
    releases_of,
    requirement_name,
    requires_of,
)

NUMPY_ALIASES = re.compile(r"module 'numpy' has no attribute '(float|int|bool|object|long|complex|str|unicode)'|"
                           r"`np\.(float|int|bool|object|long|complex|str)` was a deprecated alias")
COLLECTIONS_ABC = re.compile(r"cannot import name '(\w+)' from 'collections'|module 'collections' has no attribute '(\w+)'")
MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")
# pkg_resources' DistributionNotFound, and libraries that check their requirements the same way
MISSING_DISTRIBUTION = re.compile(r"The '([A-Za-z0-9][A-Za-z0-9._-]*)[^']*' distribution was not found and is required by")
UINT8_MASK = re.compile(r"(masked_fill_?|masked_select|masked_scatter|where).*(bool|uint8)|"
                        r"indexing with dtype torch\.uint8|mask.*(Byte|uint8)|expected.*Bool.*Byte", re.IGNORECASE)
FRAME = re.compile(r'File "([^"]+)", line (\d+)')


@dataclass
class Candidate:
    """Everything a try builds and runs; `new` changes it one repair at a time."""

    requirements: Requirements
    modules: dict[str, list[tuple[str, int]]]  # model module -> [(class, required constructor args)]
    exclude_newer: str | None = "commit"
    exempt: dict[str, str | None] = field(default_factory=dict)  # NAME -> its own date (None: today's)
    shims: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    no_deps: list[str] = field(default_factory=list)  # installed without their dependencies
    pythonpath: list[str] = field(default_factory=lambda: ["{checkout}"])
    patches: dict[str, str] = field(default_factory=dict)  # file name -> patch text
    forward: bool = True  # a forward pass may be tried (no CUDA-only construction found)
    gpu: bool = False
    final: tuple[str, str] | None = None  # (level, smoke script) once a try passed
    cutoff: datetime | None = None  # the commit's date
    index_urls: list[str] = field(default_factory=list)  # where release dates are looked up
    advanced: set[str] = field(default_factory=set)  # moved past their declared range: not loosened back

    @property
    def notes(self) -> list[str]:
        return self.requirements.notes

    def declared(self) -> set[str]:
        """Every distribution the candidate installs by name: its requirements and its --no-deps ones."""
        return self.requirements.names() | {requirement_name(line) for line in self.no_deps}

    def exempt_list(self) -> list[str]:
        return [name if when is None else f"{name}={when}" for name, when in sorted(self.exempt.items())]


def repair(candidate: Candidate, stage: str | None, output: str, checkout: Path, local: set[str],
           *, drop_modules: bool = True) -> str | None:
    """Apply the first rule that reads ``output``; return its note (None: nothing known to try).

    ``drop_modules`` False: only fixes, never leaving a module out (the modules imported already,
    the error came from building or running a model).
    """
    if stage == "setup":
        return _repair_install(candidate, output)
    if stage == "smoke":
        return _repair_run(candidate, output, checkout, local, drop_modules)
    return None


def _named_in(output: str, candidate: Candidate) -> list[str]:
    wanted = {n for n in candidate.requirements.names() if n not in TORCH_FAMILY | candidate.advanced}
    found = [normalize(m) for m in re.findall(r"`?([A-Za-z0-9][A-Za-z0-9._-]*)(?:==|`| was| depends| cannot)", output)]
    return list(dict.fromkeys(n for n in found if n in wanted))


def _repair_install(candidate: Candidate, output: str) -> str | None:
    step = re.search(r"step `(.+?)` failed", output)
    if step and step.group(1) in candidate.steps and (note := _develop_instead(candidate, step.group(1), output)):
        return note
    if step and step.group(1) in candidate.steps:
        candidate.steps.remove(step.group(1))
        return _noted(candidate, f"`{step.group(1)}` fails here ({last_error(output)}): left out; the model code "
                                 "may import without it")
    built = re.findall(r"(?:Failed to build|Failed to download and build|Failed to prepare|failed to build) `?"
                       r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:==([\w.+!-]+))?", output)
    for raw, version in built:
        name = normalize(raw)
        if name in TORCH_FAMILY:
            continue
        pinned = f"{name}=={version}" if version else name
        if candidate.exclude_newer and name not in candidate.exempt and not (
                version and newest_release(name, candidate.index_urls) == version):  # today's is the one that failed
            moved = forward_date(name, candidate.cutoff, candidate.index_urls) if candidate.cutoff else None
            candidate.exempt[name] = moved[0] if moved else None
            target = f"{moved[1]} ({moved[0]}), the first release with a wheel for this Python" if moved else "today's release"
            candidate.notes.append(f"{pinned} does not build on this Python: the next candidate, {target}")
            return candidate.notes[-1]
        parent = _brought_by(output, raw) if name not in candidate.requirements.names() else None
        # Moved forward already and still this release: the package that brings it pins it there.
        if candidate.exclude_newer and candidate.exempt.get(name) is not None and not parent:
            candidate.exempt[name] = None
            candidate.notes.append(f"{pinned} does not build on this Python: the next candidate, today's release")
            return candidate.notes[-1]
        if name not in candidate.requirements.names():
            if parent and parent[0] not in TORCH_FAMILY:
                return _without_dependencies(candidate, pinned, parent)
            continue
        line = next(ln for ln in candidate.requirements.lines if requirement_name(ln) == name)
        if _constrained(line):
            candidate.requirements.replace(name, name, f"{line}: no version it allows builds here; any version")
            return candidate.notes[-1]
        candidate.requirements.replace(name, None, f"{name} does not build on this Python in any version tried: left out")
        return candidate.notes[-1]
    filtered = re.findall(r"`([A-Za-z0-9][A-Za-z0-9._-]*)` was filtered by `exclude-newer`", output)
    for name in map(normalize, filtered):
        if candidate.exclude_newer and candidate.exempt.get(name, "") is not None:
            candidate.exempt[name] = None
            return _noted(candidate, f"{name}: no release at the commit's date fits the other requirements; "
                                     f"today's releases of {name} instead")
    for name in _named_in(output, candidate):
        line = next(ln for ln in candidate.requirements.lines if requirement_name(ln) == name)
        if _constrained(line):
            candidate.requirements.replace(name, name, f"{line}: conflicts with the other requirements; any version")
            return candidate.notes[-1]
    if candidate.exclude_newer:
        candidate.exclude_newer = None
        return _noted(candidate, "resolution as of the commit's date failed: today's releases instead")
    return None


BUILD_EXT = "python setup.py build_ext --inplace"
DEVELOP = "python setup.py develop --no-deps"


def _without_dependencies(candidate: Candidate, pinned: str, parent: tuple[str, str]) -> str:
    """The package that brings in one that does not build goes in with --no-deps; what it
    requires is listed by name, so the date bound picks their versions instead of its pins (the
    one that did not build too, when it has a later release that installs)."""
    failed = requirement_name(pinned)
    pinned_parent = f"{parent[0]}=={parent[1]}"
    candidate.requirements.lines = [ln for ln in candidate.requirements.lines if requirement_name(ln) != parent[0]]
    candidate.no_deps.append(pinned_parent)
    listed = [name for name in requires_of(*parent, candidate.index_urls)
              if name not in TORCH_FAMILY and name not in candidate.declared()
              and (name != failed or candidate.exempt.get(name) is not None)]
    note = _noted(candidate, f"{pinned} (needed by {pinned_parent}) does not build on this Python: {pinned_parent} "
                             "installed without its dependencies"
                             + (f"; its requirements listed by name instead: {', '.join(listed)}" if listed else ""))
    for name in listed:
        _add(candidate, name)
    return note


def _develop_instead(candidate: Candidate, command: str, output: str) -> str | None:
    """``build_ext --inplace`` that fails in setuptools' own code (its command line refuses what
    an old setup.py gives it): ``develop`` builds the same extensions in place through setuptools'
    commands, with the setuptools of the commit's date (``develop`` is gone from today's)."""
    frames = re.findall(r'File "[^"]*/site-packages/([A-Za-z0-9_]+)[/.]', output)
    if not command.endswith(BUILD_EXT) or not frames or frames[-1] not in ("setuptools", "distutils"):
        return None
    candidate.steps[candidate.steps.index(command)] = command.removesuffix(BUILD_EXT) + DEVELOP
    version = release_at("setuptools", candidate.cutoff, candidate.index_urls) if candidate.cutoff else None
    if version and not any(requirement_name(line) == "setuptools" for line in candidate.no_deps):
        candidate.no_deps.append(f"setuptools=={version}")
    with_setuptools = f", with setuptools {version} (the commit's date's, installed without dependencies)" if version else ""
    return _noted(candidate, f"`{command}` fails inside setuptools ({last_error(output)}): `{DEVELOP}` builds the "
                             f"extensions in place instead{with_setuptools}")


def _add(candidate: Candidate, name: str, note: str | None = None) -> str:
    """Add a requirement; one whose release at the commit's date has no wheel for this Python
    moves forward at once, as the first candidate's did (a build that would fail is one try less)."""
    candidate.requirements.add(name)
    moved = (forward_date(normalize(name), candidate.cutoff, candidate.index_urls)
             if candidate.exclude_newer and candidate.cutoff and normalize(name) not in candidate.exempt else None)
    if moved:
        candidate.exempt[normalize(name)] = moved[0]
        forward = f"moved forward to {moved[1]} ({moved[0]}), its first release with a wheel for this Python"
        note = f"{note}; {forward}" if note else f"{name}: its release at the commit's date has no wheel; {forward}"
    if note:
        candidate.notes.append(note)
    return note or ""


def _constrained(line: str) -> bool:
    """The requirement line says more than the name (a version range, extras, a marker)."""
    return requirement_name(line) != normalize(line.strip())


def _brought_by(output: str, name: str) -> tuple[str, str] | None:
    """uv's hint: ``X`` was included because ``P`` (vW) depends on ``X``."""
    match = re.search(rf"`{re.escape(name)}` \(v[^)]*\) was included because `([A-Za-z0-9._-]+)` \(v([^)]+)\) depends", output)
    return (normalize(match.group(1)), match.group(2)) if match else None


def _noted(candidate: Candidate, note: str) -> str:
    candidate.notes.append(note)
    return note


def _repair_run(candidate: Candidate, output: str, checkout: Path, local: set[str], drop_modules: bool) -> str | None:
    if (match := NUMPY_ALIASES.search(output)) and "numpy<1.24" not in candidate.requirements.lines:
        alias = next(g for g in match.groups() if g)
        candidate.requirements.replace("numpy", "numpy<1.24", f"numpy<1.24: the code uses np.{alias}, removed in numpy 1.24")
        return candidate.notes[-1]
    if (match := COLLECTIONS_ABC.search(output)) and "collections-abc" not in candidate.shims:
        candidate.shims.append("collections-abc")
        name = next(g for g in match.groups() if g)
        candidate.notes.append(f"collections.{name} (removed in Python 3.10): the smoke script restores the "
                               "collections.abc aliases first")
        return candidate.notes[-1]
    if "torch-cuda-version" not in candidate.shims and _parses_cuda_version(output):
        candidate.shims.append("torch-cuda-version")
        candidate.notes.append("torch.version.cuda is None on the CPU wheel and the code parses it at import: "
                               "the smoke script sets it first")
        return candidate.notes[-1]
    if (match := MISSING_MODULE.search(output)):
        top = match.group(1).split(".")[0]
        dist = distribution_for(top)
        if top not in local and dist and normalize(dist) not in candidate.declared():
            return _add(candidate, dist, f"{dist} added: the code imports {top}, which nothing declares")
        if "." in match.group(1) and dist and (note := _older_major(candidate, normalize(dist), match.group(1), output)):
            return note
    if (match := MISSING_DISTRIBUTION.search(output)):
        dist = normalize(match.group(1))
        if dist not in {normalize(name) for name in local} and dist not in candidate.declared():
            return _add(candidate, dist, f"{dist} added: the code requires the distribution {dist} at run time, "
                                         "which nothing declares")
    if UINT8_MASK.search(output) and (note := _patch_uint8(candidate, output, checkout)):
        return note
    if (note := _newer_for_this_python(candidate, output)):
        return note
    if "mutable default" in output and (note := _patch_mutable_defaults(candidate, output, checkout)):
        return note
    if (inside := _failing_dependency(output)) and (note := _older_major(candidate, inside, f"{inside}'s own code", output)):
        return note
    return _drop_failing_module(candidate, output, checkout) if drop_modules else None


def _older_major(candidate: Candidate, name: str, module: str, output: str) -> str | None:
    """A dependency lacks a module the code imports: it was moved or removed in a later release,
    so the release series before the installed one."""
    installed = re.findall(rf"^ \+ {re.escape(name)}==([\w.]+)", output, re.MULTILINE)
    if name in TORCH_FAMILY or name not in candidate.declared() or not installed:
        return None
    parts = installed[-1].split(".")
    bound = f"<{parts[0]}" if parts[0] != "0" else f"<0.{parts[1] if len(parts) > 1 else 1}"
    if bound.endswith("<0") or bound == "<0.0":
        return None
    note = (f"{name}{bound}: {module} is gone in {name} {installed[-1]}" if "." in module and "'" not in module
            else f"{name}{bound}: {module} fails on this Python in {name} {installed[-1]}")
    unpinned = [line for line in candidate.no_deps if requirement_name(line) == name]
    if unpinned:  # installed without its dependencies: the same, at the older series
        candidate.no_deps[candidate.no_deps.index(unpinned[0])] = f"{name}{bound}"
        return _noted(candidate, note)
    candidate.requirements.replace(name, f"{name}{bound}", note)
    return candidate.notes[-1]


# Errors of code older than this Python: what it removed or now refuses.
TOO_OLD_FOR_PYTHON = re.compile(r"ValueError: mutable default .* is not allowed|"
                                r"module 'inspect' has no attribute 'getargspec'|"
                                r"module 'asyncio' has no attribute 'coroutine'|"
                                r"No module named '(distutils|imp|asynchat|asyncore)'")
PYTHON_RELEASED = {(3, 10): datetime(2021, 10, 4, tzinfo=timezone.utc), (3, 11): datetime(2022, 10, 24, tzinfo=timezone.utc),
                   (3, 12): datetime(2023, 10, 2, tzinfo=timezone.utc), (3, 13): datetime(2024, 10, 7, tzinfo=timezone.utc)}


def _newer_for_this_python(candidate: Candidate, output: str) -> str | None:
    """An installed distribution's own code fails the way code older than this Python does:
    its first release after this Python came out (a newer one than its declared range allows)."""
    error = TOO_OLD_FOR_PYTHON.search(output)
    name = _innermost_dependency(output)
    released = PYTHON_RELEASED.get(sys.version_info[:2])
    if not error or not name or name in TORCH_FAMILY or name in candidate.advanced or released is None:
        return None
    release = next((r for r in releases_of(name, candidate.index_urls) if r.uploaded > released), None)
    if release is None:
        return None
    candidate.advanced.add(name)
    if candidate.exclude_newer and candidate.cutoff and candidate.cutoff < release.uploaded:
        candidate.exempt[name] = release.uploaded.date().isoformat()
    python = ".".join(map(str, sys.version_info[:2]))
    note = (f"{name}>={release.version}: {name}'s own code fails on Python {python} ({last_error(output)}); "
            f"its first release after Python {python} came out")
    unpinned = [line for line in candidate.no_deps if requirement_name(line) == name]
    if unpinned:
        candidate.no_deps[candidate.no_deps.index(unpinned[0])] = f"{name}=={release.version}"
        return _noted(candidate, note)
    candidate.requirements.replace(name, f"{name}>={release.version}", note)
    return note


def _innermost_dependency(output: str) -> str | None:
    """The installed distribution of the traceback's innermost frame outside the standard library."""
    for path in reversed(re.findall(r'File "([^"]+)", line \d+', output)):
        if "/site-packages/" in path:
            top = path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
            dist = distribution_for(top)
            return normalize(dist) if dist else None
        if path.startswith("/") and not re.search(r"/lib/python3\.\d+/", path):
            return None  # the repository's own code
    return None


def _failing_dependency(output: str) -> str | None:
    """The installed distribution whose own code raised (the innermost frame in site-packages)."""
    folders = re.findall(r'File "[^"]*/site-packages/([A-Za-z0-9_]+)[/.]', output)
    return normalize(distribution_for(folders[-1])) if folders and distribution_for(folders[-1]) else None


def _parses_cuda_version(output: str) -> bool:
    return "torch.version.cuda" in output or bool(
        re.search(r"'NoneType' object has no attribute '(split|replace|startswith)'", output) and "cuda" in output.lower())


def _frames_in(output: str, checkout: Path) -> list[tuple[Path, int]]:
    frames = []
    for path, line in FRAME.findall(output):
        resolved = Path(path)
        if resolved.is_file() and resolved.resolve().is_relative_to(checkout.resolve()):
            frames.append((resolved, int(line)))
    return frames


_UINT8 = ((".byte()", ".bool()"), ("torch.uint8", "torch.bool"), ("torch.ByteTensor", "torch.BoolTensor"),
          ("torch.cuda.ByteTensor", "torch.cuda.BoolTensor"))


def _patch_uint8(candidate: Candidate, output: str, checkout: Path) -> str | None:
    """Masks built as uint8 (torch < 1.2) are bool now: a patch for the file that failed."""
    def fix(text: str) -> str:
        for old, new in _UINT8:
            text = text.replace(old, new)
        return text

    return _patch_failing_file(candidate, output, checkout, "uint8-masks", fix, "uint8 masks (torch < 1.2) in {rel} made bool")


# [ \t], not \s: a match must not take the line's newline (or the blank lines after it) with it
_CLASS_DEFAULT = re.compile(r"^([ \t]+)(\w+)[ \t]*:[ \t]*([^=#\n]+?)[ \t]*=[ \t]*([A-Z][\w.]*)\(\)[ \t]*$", re.MULTILINE)


def _patch_mutable_defaults(candidate: Candidate, output: str, checkout: Path) -> str | None:
    """Python 3.11 rejects a dataclass field whose default is an instance of a dataclass:
    ``field(default_factory=...)`` instead, in the file whose class failed."""
    def fix(text: str) -> str:
        changed = _CLASS_DEFAULT.sub(r"\1\2: \3 = dataclasses.field(default_factory=\4)", text)
        if changed == text or re.search(r"^import dataclasses$", changed, re.MULTILINE):
            return changed
        lines = changed.splitlines(keepends=True)
        at = next((i for i, line in enumerate(lines) if line.startswith(("import ", "from "))
                   and not line.startswith("from __future__")), 0)
        return "".join([*lines[:at], "import dataclasses\n", *lines[at:]])

    return _patch_failing_file(candidate, output, checkout, "py311-dataclass-defaults", fix,
                               "mutable dataclass defaults (refused since Python 3.11) in {rel}: default_factory")


def _patch_failing_file(candidate: Candidate, output: str, checkout: Path, label: str,
                        fix: Callable[[str], str], note: str) -> str | None:
    """A patch (in ``candidate.patches``) of the innermost file of the repository in the traceback
    that ``fix`` changes; None when it changes none."""
    root = _repo_root(checkout)  # the code's folder may import from anywhere in the repository
    for path, _ in reversed(_frames_in(output, root)):
        text = path.read_text(encoding="utf-8")
        changed = fix(text)
        rel = path.resolve().relative_to(root).as_posix()
        name = f"{label}-{re.sub(r'[^A-Za-z0-9]+', '-', rel).strip('-')}.patch"
        if changed == text or name in candidate.patches:
            continue
        diff = difflib.unified_diff(text.splitlines(keepends=True), changed.splitlines(keepends=True),
                                    f"a/{rel}", f"b/{rel}")
        candidate.patches[name] = "".join(diff)
        return _noted(candidate, f"{note.format(rel=rel)}: patch {name}")
    return None


def _repo_root(checkout: Path) -> Path:
    folder = checkout.resolve()
    while not (folder / ".git").exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _drop_failing_module(candidate: Candidate, output: str, checkout: Path) -> str | None:
    """A model module that does not import for a reason no rule knows: try the others without it."""
    if len(candidate.modules) <= 1:
        return None
    error = last_error(output)
    touched = [str(p.resolve()) for p, _ in _frames_in(output, checkout)]
    for name in list(candidate.modules):
        path_part = name.replace(".", "/")
        if any(path_part in t for t in touched) or f"'{name}'" in output:
            del candidate.modules[name]
            candidate.notes.append(f"{name} does not import here ({error}): left out of the smoke test")
            return candidate.notes[-1]
    return None


INSTALLED_LINE = re.compile(r"^\+ [A-Za-z0-9._-]+==\S+$")  # uv's (and `new`'s appended) list of what is installed


def last_error(output: str) -> str:
    """The line that says what failed: the last exception or error line, else the last line
    that is not part of the list of installed packages."""
    for line in reversed(output.splitlines()):
        if re.match(r"^[\w.]*(Error|Exception|NotFound|error)\b.*:", line.strip()):
            return line.strip()[:200]
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not INSTALLED_LINE.match(ln.strip())]
    return lines[-1][:200] if lines else "no output"
