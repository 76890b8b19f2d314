"""Defaults for options, from ``awrepro.toml`` beside the registry in use.

    jobs = 4                              # --jobs (check, fetch, setup)
    timeout = 900                         # --timeout (check)
    fail_on = "regression"                # --fail-on (check)
    mirror = "/srv/awrepro-mirror"        # --mirror
    db = ".awrepro/results.db"            # --db
    json = "reports/check.json"           # check --json
    junit = "reports/junit.xml"           # check --junit
    markdown = "reports/summary.md"       # check --markdown

Relative paths start at the file's folder. Precedence, lowest first: this file, then the
environment variables (``AWREPRO_JOBS``, ``AWREPRO_TIMEOUT``, ``AWREPRO_FAIL_ON``,
``AWREPRO_MIRROR``, ``AWREPRO_DB``, ``AWREPRO_JSON``, ``AWREPRO_JUNIT``, ``AWREPRO_MARKDOWN``),
then the flags. A file of its own rather than a table in the registry: the registry says what
the list is (and is shared, reviewed and shipped); these say how one machine or CI job runs it.
(No ``from __future__ import annotations``: NamedTuple would compile each string annotation.)
"""

import difflib
from pathlib import Path
from typing import Any, NamedTuple

from awrepro.errors import UsageError

FILENAME = "awrepro.toml"
FAIL_ON = ("any", "regression", "never")


class FileSettings(NamedTuple):
    jobs: int | None = None
    timeout: int | None = None
    fail_on: str | None = None
    mirror: Path | None = None
    db: Path | None = None
    json: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None


_PATHS = ("mirror", "db", "json", "junit", "markdown")
_COUNTS = ("jobs", "timeout")


def beside(registry_path: Path) -> Path:
    return registry_path.parent / FILENAME


def load(registry_path: Path) -> FileSettings:
    """The settings beside ``registry_path``; none when there is no such file. Bad ones: exit 2."""
    import tomllib

    path = beside(registry_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return FileSettings()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the settings: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    return FileSettings(**{key: _value(path, key, value) for key, value in data.items()})


def _value(path: Path, key: str, value: Any) -> Any:
    if key not in FileSettings._fields:
        close = difflib.get_close_matches(key, FileSettings._fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(FileSettings._fields)}"
        raise UsageError(f"{path}: {key}: unknown setting{hint}")
    if key in _COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{path}: {key}: must be a whole number of at least 1, not {value!r}")
        return value
    if key == "fail_on":
        if value not in FAIL_ON:
            raise UsageError(f"{path}: fail_on: must be one of {', '.join(FAIL_ON)}, not {value!r}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{path}: {key}: must be a path (a non-empty string), not {value!r}")
    return path.parent / Path(value).expanduser()
