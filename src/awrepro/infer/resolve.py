"""From what the analysis found to requirements, and the strategy that resolves them.

Strategy, in order: as of the commit's date (``exclude_newer = "commit"``, the local torch wheel
and everything it needs exempt); a package whose release at that date has no wheel for this
interpreter while later ones do moves forward to the first release that has one (it would
otherwise be built from an old source release, which rarely works on today's Python); today's
releases last. torch is always the local wheel's version, whatever the repository declares.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from awrepro.infer.analysis import Analysis, Module
from awrepro.infer.names import TORCH_FAMILY, distribution_for


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Requirements:
    lines: list[str] = field(default_factory=list)  # PEP 508, torch's pin first
    notes: list[str] = field(default_factory=list)

    def names(self) -> set[str]:
        return {requirement_name(line) for line in self.lines}

    def add(self, line: str, note: str | None = None) -> bool:
        if requirement_name(line) in self.names():
            return False
        self.lines.append(line)
        if note:
            self.notes.append(note)
        return True

    def replace(self, name: str, line: str | None, note: str) -> None:
        """Replace (in its place) or, with ``line`` None, remove the requirement on ``name``."""
        kept = [line if requirement_name(ln) == name else ln for ln in self.lines]
        if name not in self.names() and line:
            kept.append(line)
        self.lines = [ln for ln in kept if ln]
        self.notes.append(note)


def requirement_name(line: str) -> str:
    return normalize(re.split(r"[\s<>=!~;\[(@]", line.strip(), maxsplit=1)[0])


def torch_pin(find_links: tuple[str, ...]) -> str | None:
    """``torch==VERSION`` of the torch wheel in a local wheel folder: the only torch `new` installs."""
    wheel = _torch_wheel(find_links)
    return f"torch=={wheel.name.split('-')[1].split('+')[0]}" if wheel else None


def torch_is_cpu_build(find_links: tuple[str, ...]) -> bool:
    """The local torch wheel is a CPU build (``+cpu``): CUDA extensions cannot be built against it."""
    wheel = _torch_wheel(find_links)
    return wheel is not None and wheel.name.split("-")[1].endswith("+cpu")


def _torch_wheel(find_links: tuple[str, ...]) -> Path | None:
    for link in find_links:
        folder = Path(link.removeprefix("file://"))
        if folder.is_dir():
            for wheel in sorted(folder.glob("torch-*.whl")):
                return wheel
    return None


def requirements_for(analysis: Analysis, modules: list[Module], torch: str, own_names: set[str]) -> Requirements:
    """Declared requirements (torch's family replaced, exact pins left to the date bound) and
    the undeclared third-party imports of the model modules and what they import."""
    from packaging.requirements import InvalidRequirement, Requirement

    result = Requirements([torch])
    skipped: list[str] = []
    for declared in analysis.declared:
        line = declared.requirement
        if "://" in line or line.startswith(("git+", ".", "/")) or "@" in line.split(";")[0]:
            skipped.append(f"{line} ({declared.source})")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            skipped.append(f"{line} ({declared.source})")
            continue
        name = normalize(requirement.name)
        if name in TORCH_FAMILY or name in own_names:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        specs = [s for s in requirement.specifier if s.operator not in ("==", "===", "~=")]
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        relaxed = f"{requirement.name}{extras}{','.join(str(s) for s in specs)}"
        if result.add(relaxed) and len(specs) != len(requirement.specifier):
            result.notes.append(f"{line} ({declared.source}): exact pin left to the date bound, which picks the "
                                "release of the commit's time that installs here")
    if skipped:
        result.notes.append(f"not installable from an index, left out: {', '.join(skipped[:4])}")
    used: dict[str, str] = {}
    local = analysis.local_top_names()
    for module in analysis.closure(modules):
        for top in module.third_party:
            if top not in local:
                used.setdefault(top, module.path)
    for top, path in sorted(used.items()):
        dist = distribution_for(top)
        if not dist or normalize(dist) in result.names() or normalize(top) in result.names():
            continue
        result.add(dist, f"{dist} added: {path} imports {top}, which nothing declares")
    return result


def own_names(analysis: Analysis, repo_name: str) -> set[str]:
    """Names the repository's own package goes by: never installed from an index in its place."""
    names = {normalize(repo_name)} | {normalize(n) for n in analysis.local_top_names()}
    setup = analysis.root / "setup.py"
    if setup.is_file():
        match = re.search(r"name\s*=\s*['\"]([A-Za-z0-9._-]+)['\"]", setup.read_text(errors="replace"))
        if match:
            names.add(normalize(match.group(1)))
    return names


# ------------------------------------------------------------------ moving forward per package

@dataclass(frozen=True)
class Release:
    version: str
    uploaded: datetime  # its first file
    binary_at: datetime | None  # its first wheel this interpreter installs without building (None: none)
    compiled: bool = False  # it has platform wheels: its source release needs a compiler and old build tools


def first_installable_after(releases: list[Release], cutoff: datetime) -> Release | None:
    """The first release that had a wheel for this interpreter after ``cutoff``, when the newest
    release at ``cutoff`` had none then but later ones do (a compiled package); else None.

    Times are those of the wheels themselves: a release often gets the wheel of a newer Python
    long after it came out, and a date bound filters files, not releases.
    """
    before = [r for r in releases if r.uploaded <= cutoff]
    if not before or not any(r.compiled for r in releases):
        return None  # a pure-Python package builds from its source release on any Python
    newest = max(before, key=lambda r: r.uploaded)
    if newest.binary_at is not None and newest.binary_at <= cutoff:
        return None
    later = [r for r in releases if r.binary_at is not None and r.binary_at > cutoff]
    return min(later, key=lambda r: r.binary_at or cutoff) if later else None


def releases_of(name: str, index_urls: list[str]) -> list[Release]:
    """A distribution's releases, oldest first, from the first index that gives upload times (PEP 691/700)."""
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    tags = set(sys_tags())
    for _, data in _pages(name, index_urls):
        first: dict[str, datetime] = {}
        binary: dict[str, datetime] = {}
        compiled: set[str] = set()
        for file in data["files"]:
            filename, stamp = str(file.get("filename", "")), file.get("upload-time")
            if not stamp or file.get("yanked"):
                continue
            uploaded = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            installs = False
            if filename.endswith(".whl"):
                try:
                    _, version, _, wheel_tags = parse_wheel_filename(filename)
                except InvalidWheelFilename:
                    continue
                if version.is_prerelease or version.is_devrelease:
                    continue
                installs = bool(wheel_tags & tags)
                key = str(version)
                if any(t.platform != "any" for t in wheel_tags):
                    compiled.add(key)
            else:
                match = re.match(rf"^{re.escape(normalize(name)).replace('-', '[-_.]')}-(.+?)\.(tar\.gz|zip|tar\.bz2)$",
                                 filename, re.IGNORECASE)
                if not match:
                    continue
                key = match.group(1)
                if re.search(r"(a|b|rc|dev)\d*$", key):
                    continue  # a pre-release: installers pass over it
            first[key] = min(uploaded, first.get(key, uploaded))
            if installs:
                binary[key] = min(uploaded, binary.get(key, uploaded))
        if first:
            found = [Release(key, when, binary.get(key), key in compiled) for key, when in first.items()]
            return sorted(found, key=lambda r: r.uploaded)
    return []


def forward_dates(names: set[str], cutoff: datetime, index_urls: list[str]) -> dict[str, tuple[str, str]]:
    """NAME -> (its own bound, the release it lets in) for packages to move forward."""
    from concurrent.futures import ThreadPoolExecutor

    ordered = sorted(names)
    with ThreadPoolExecutor(max_workers=8) as pool:  # one index page each: mostly waiting
        found = list(pool.map(lambda name: forward_date(name, cutoff, index_urls), ordered))
    return {name: moved for name, moved in zip(ordered, found) if moved is not None}


def forward_date(name: str, cutoff: datetime, index_urls: list[str]) -> tuple[str, str] | None:
    """(the bound that lets the first installable later release in, that release's version)."""
    release = first_installable_after(releases_of(name, index_urls), cutoff)
    if release is None or release.binary_at is None:
        return None
    return release.binary_at.date().isoformat(), release.version


def _pages(name: str, index_urls: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(the project page's URL, its PEP 691 JSON) from each index that has one."""
    import httpx

    for url in index_urls:
        if not url.startswith(("http://", "https://")):
            continue
        page = f"{url.rstrip('/')}/{normalize(name)}/"
        try:
            response = httpx.get(page, timeout=30, follow_redirects=True,
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("files"), list):
            yield str(response.url), data


def requires_of(name: str, version: str, index_urls: list[str]) -> list[str]:
    """The distributions a release of ``name`` requires (no extras), read from one of its wheels."""
    import io
    import zipfile

    import httpx
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    for page, data in _pages(name, index_urls):
        for file in data["files"]:
            filename = str(file.get("filename", ""))
            try:
                if not filename.endswith(".whl") or str(parse_wheel_filename(filename)[1]) != version:
                    continue
                response = httpx.get(httpx.URL(page).join(str(file.get("url", ""))), timeout=120, follow_redirects=True)
                with zipfile.ZipFile(io.BytesIO(response.content)) as wheel:
                    metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
                    text = wheel.read(metadata).decode(errors="replace")
            except (InvalidWheelFilename, httpx.HTTPError, zipfile.BadZipFile, StopIteration, KeyError):
                continue
            found = []
            for line in text.splitlines():
                if not line.startswith("Requires-Dist:"):
                    continue
                try:
                    requirement = Requirement(line.partition(":")[2].strip())
                except InvalidRequirement:
                    continue
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    found.append(normalize(requirement.name))
            return list(dict.fromkeys(found))
    return []


def newest_release(name: str, index_urls: list[str]) -> str | None:
    """The highest version the index has of ``name`` (None: no index says)."""
    from packaging.version import InvalidVersion, Version

    versions = []
    for release in releases_of(name, index_urls):
        try:
            versions.append((Version(release.version), release.version))
        except InvalidVersion:
            continue
    return max(versions)[1] if versions else None


def release_at(name: str, cutoff: datetime, index_urls: list[str]) -> str | None:
    """The version of ``name`` that was newest at ``cutoff`` (None: none then, or no index says)."""
    before = [r for r in releases_of(name, index_urls) if r.uploaded <= cutoff]
    return max(before, key=lambda r: r.uploaded).version if before else None
