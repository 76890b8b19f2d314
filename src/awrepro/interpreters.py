"""Finding a Python interpreter on this machine that matches an entry's constraint.

Looked for, in order: the interpreter awrepro runs on, ``python3.X`` on PATH, pyenv's
versions, and finally ``uv python find``. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from awrepro import process

_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # "3.11.7"


def constraint_of(value: str) -> str:
    """A bare version like ``2.7`` means ``==2.7.*``; anything else is already a specifier."""
    return f"=={value}.*" if re.fullmatch(r"\d+(\.\d+)?", value.strip()) else value


def find(constraint: str) -> Interpreter | None:
    """The first interpreter whose version satisfies ``constraint`` (a PEP 440 specifier)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    spec = SpecifierSet(constraint_of(constraint))
    for candidate in _candidates():
        found = probe(candidate)
        if found and spec.contains(Version(found.version), prereleases=True):
            return found
    return _uv_find(constraint_of(constraint))


def _candidates() -> list[Path]:
    return [path for path, _ in sources()]


def sources() -> list[tuple[Path, str]]:
    """Candidate interpreters in the order they are tried, each with where it was found."""
    seen: dict[Path, str] = {Path(sys.executable): "the one awrepro runs on"}
    for minor in range(15, 5, -1):
        for name in (f"python3.{minor}",):
            path = shutil.which(name)
            if path:
                seen.setdefault(Path(path), f"{name} on PATH")
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        for version_dir in sorted(pyenv.iterdir(), key=_version_key, reverse=True):
            for name in ("python3", "python2", "python"):
                if (version_dir / "bin" / name).is_file():
                    seen.setdefault(version_dir / "bin" / name, "pyenv")
                    break
    for name in ("python2.7", "python2"):
        path = shutil.which(name)
        if path:
            seen.setdefault(Path(path), f"{name} on PATH")
    return list(seen.items())


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)[:3]) or (0,)


@functools.lru_cache(maxsize=None)
def probe(path: Path) -> Interpreter | None:
    """Run ``path`` once to learn its version; None if it does not start (a pyenv shim of another version)."""
    if path == Path(sys.executable):
        return Interpreter(path, "%d.%d.%d" % sys.version_info[:3])  # no need to start ourselves again
    done = process.run([str(path), "-c", _PROBE], timeout=20)
    version = done.output.strip()
    if not done.ok or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        return None
    return Interpreter(path, version)


def _uv_find(constraint: str) -> Interpreter | None:
    from awrepro.envs.uv import uv_binary

    done = process.run([uv_binary(), "python", "find", "--no-python-downloads", constraint], timeout=30)
    found = done.output.strip().splitlines()
    if not done.ok or not found:
        return None
    return probe(Path(found[-1]))
