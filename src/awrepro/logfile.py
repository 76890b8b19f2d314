"""The crash log: where an unexpected exception's traceback goes (``<cache>/awrepro.log``)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from awrepro import __version__
from awrepro.constants import LOG_FILENAME

_cache_dir: Path | None = None


def remember_cache_dir(explicit: Path | None) -> None:
    """Called once by the CLI so that a crash anywhere can find the cache."""
    global _cache_dir
    _cache_dir = explicit


def write_crash_log(trace: str) -> Path | None:
    """Append a Markdown report (versions, command, traceback) to the log; None if it cannot be written."""
    from awrepro.cache import resolve_root

    path = resolve_root(_cache_dir, os.environ) / LOG_FILENAME
    report = (
        f"## {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n\n"
        f"- awrepro {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
        f"- command: `{' '.join(sys.argv)}`\n\n```\n{trace.rstrip()}\n```\n\n"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(report)
    except OSError:
        return None
    return path
