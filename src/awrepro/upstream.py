"""What upstream has compared with a pin, learnt without a full clone.

A scratch bare repository fetches only commits (``--filter=tree:0``: no trees, no files) of
the default branch, or of one commit: enough for dates, ancestry and how many commits a pin
is behind. Servers that do not filter send everything, which is still correct.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from awrepro import git

FETCH_TIMEOUT = 300.0  # seconds for one commits-only fetch


class Probe:
    """A scratch repository for one upstream URL; use it in a ``with`` block."""

    def __init__(self, url: str, *, allow_file: bool = False) -> None:
        git.check_url(url, allow_file=allow_file)
        self.url = url
        self.allow_file = allow_file
        self.path = Path(tempfile.mkdtemp(prefix="awrepro-upstream-"))
        git.init_bare(self.path)
        git.make_partial(self.path, url)  # git filters only what a promisor remote sends

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _fetch(self, *args: str) -> bool:
        # Bounded: a dumb-HTTP server (no filters, no smart protocol) can keep a partial fetch going forever.
        done = git.run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=tree:0", "origin", *args],
                       cwd=self.path, allow_file=self.allow_file, timeout=FETCH_TIMEOUT)
        return done.ok

    def fetch_branch(self, branch: str) -> bool:
        """The branch's commits, as ``refs/upstream``."""
        return self._fetch(f"+{branch}:refs/upstream")

    def fetch_commit(self, commit: str) -> bool:
        """One commit (no history), when the server hands out commits by id."""
        return self.has(commit) or self._fetch("--depth", "1", commit)

    def has(self, commit: str) -> bool:
        return git.has_commit(self.path, commit)

    def committed_at(self, commit: str) -> datetime | None:
        done = git.run(["log", "-1", "--format=%ct", commit], cwd=self.path, timeout=60)
        stamp = done.output.strip()
        return datetime.fromtimestamp(int(stamp), tz=timezone.utc) if done.ok and stamp.isdigit() else None

    def behind(self, commit: str) -> int | None:
        """How many commits of the branch come after ``commit`` (None when it is not on the branch)."""
        if not git.run(["merge-base", "--is-ancestor", commit, "refs/upstream"], cwd=self.path, timeout=60).ok:
            return None
        done = git.run(["rev-list", "--count", f"{commit}..refs/upstream"], cwd=self.path, timeout=60)
        return int(done.output.strip()) if done.ok and done.output.strip().isdigit() else None


def age_in_days(when: datetime, now: datetime | None = None) -> float:
    return ((now or datetime.now(timezone.utc)) - when).total_seconds() / 86400
