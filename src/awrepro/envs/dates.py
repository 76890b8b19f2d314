"""Date-bounded resolution: install what an index offered on a given day (``env.exclude_newer``).

A bound needs every file's upload time (PEP 700). A wheel in a local folder has none, and the
packages such a wheel requires are often far newer than the bound (torch 2.13 needs
typing-extensions ≥ 4.10, sympy ≥ 1.13.3, ... that a 2019 date does not offer). So exempting a
package exempts everything it needs: the exempt packages — those named in
``exclude_newer_exempt`` and those the local wheel folders hold — are resolved alone, without
the bound, and every distribution of that resolution is exempt with them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from awrepro import process
from awrepro.errors import EnvSetupError

UNBOUNDED = "false"  # uv's value for "no bound at all" in --exclude-newer-package NAME=false


@dataclass(frozen=True)
class DateBound:
    cutoff: str  # a date (YYYY-MM-DD) or an RFC 3339 timestamp, as the installers take it
    exempt: tuple[str, ...]  # as declared: NAME or NAME=YYYY-MM-DD


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bound_for(exclude_newer: str | None, exempt: tuple[str, ...], root: Path) -> DateBound | None:
    """The bound an entry asks for; ``"commit"`` is the checkout's commit date (committer time)."""
    if exclude_newer is None:
        return None
    if exclude_newer != "commit":
        return DateBound(exclude_newer, exempt)
    from awrepro import git

    try:
        stamp = git.commit_time(root).isoformat()
    except Exception as exc:  # noqa: BLE001 (an archive or a broken checkout: say which)
        raise EnvSetupError(f"exclude_newer = \"commit\": the commit's date cannot be read: {exc}") from None
    return DateBound(stamp, exempt)


def local_distributions(find_links: tuple[str, ...]) -> set[str]:
    """Names of the distributions that lie in local wheel folders (they carry no upload time)."""
    names: set[str] = set()
    for link in find_links:
        folder = Path(link[len("file://"):] if link.startswith("file://") else link)
        if "://" in link and not link.startswith("file://") or not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.endswith((".whl", ".tar.gz", ".zip")):
                names.add(normalize(re.split(r"-\d", path.name, maxsplit=1)[0]))
    return names


def exempt_groups(bound: DateBound, requirements: list[str], local: set[str]) -> dict[str | None, list[str]]:
    """The requirements to resolve alone, by their own bound (None: no bound).

    An exempt name takes its version constraint from the entry's requirements when they name it
    (``torch==2.13.0``), so the closure is that of what will be installed.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    declared: dict[str, str] = {}
    for line in requirements:
        try:
            declared.setdefault(normalize(Requirement(line).name), line)
        except InvalidRequirement:
            continue
    groups: dict[str | None, list[str]] = {}
    named = [(normalize(item.partition("=")[0]), item.partition("=")[2] or None) for item in bound.exempt]
    named += [(name, None) for name in sorted(local & declared.keys()) if name not in dict(named)]
    for name, when in named:
        groups.setdefault(when, []).append(declared.get(name, name))
    return groups


def parse_resolution(output: str) -> list[str]:
    """Distribution names from ``uv pip compile`` output (``name==version`` lines)."""
    names = []
    for line in output.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?\s*==", line.strip())
        if match:
            names.append(normalize(match.group(1)))
    return names


def exemptions(groups: dict[str | None, list[str]],
               resolve: Callable[[list[str], str | None], list[str]]) -> dict[str, str]:
    """NAME -> its bound (a date, or ``false``) for every distribution the exempt packages need."""
    exempt: dict[str, str] = {}
    for when, specs in sorted(groups.items(), key=lambda item: item[0] or "9999"):
        for name in resolve(specs, when):
            if exempt.get(name) == UNBOUNDED:
                continue
            exempt[name] = UNBOUNDED if when is None else max(when, exempt.get(name, when))
    return exempt


class Resolver:
    """Resolves requirements alone with ``uv pip compile`` (no environment is touched)."""

    def __init__(self, uv: str, python: Path, index_args: list[str], environ: dict[str, str], cwd: Path,
                 log_path: Path | None) -> None:
        self.uv, self.python, self.index_args = uv, python, index_args
        self.environ, self.cwd, self.log_path = environ, cwd, log_path

    def __call__(self, specs: list[str], when: str | None) -> list[str]:
        cmd = [self.uv, "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--no-python-downloads",
               "--python", str(self.python), *self.index_args, *(["--exclude-newer", when] if when else [])]
        done = process.run(cmd, cwd=self.cwd, env=self.environ, timeout=600, input_text="\n".join(specs) + "\n",
                           whole_output=True)
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(f"$ {' '.join(cmd)}  # exempt from exclude_newer: {', '.join(specs)}\n{done.output}")
        if not done.ok:
            reason = process.last_error_line(done.output) or f"exit code {done.returncode}"
            raise EnvSetupError(f"resolving the packages exempt from exclude_newer ({', '.join(specs)}) failed: {reason}")
        return parse_resolution(done.output)


def uv_args(bound: DateBound, exempt: dict[str, str]) -> list[str]:
    args = ["--exclude-newer", bound.cutoff]
    for name, when in sorted(exempt.items()):
        args += ["--exclude-newer-package", f"{name}={when}"]
    return args


PIP_OPTION = "--uploaded-prior-to"


def pip_supports(help_text: str) -> bool:
    return PIP_OPTION in help_text
