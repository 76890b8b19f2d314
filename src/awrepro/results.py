"""Results of checks as frozen records, and their versioned JSON form.

The JSON report (``check --json``) is::

    {"format": "awrepro-report", "version": 1, "awrepro": "0.1.0", "registry": PATH,
     "started_at": ISO-8601, "finished_at": ISO-8601, "interrupted": false,
     "summary": {"passed": N, "failed": N, ...},
     "results": [RESULT, ...]}

and every RESULT is ``Result.to_dict()``: id, full_id, status, level, failed_stage, duration,
note, commit, env_key, log_path and stages (name, status, duration, log_path).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from awrepro.sanitize import printable

REPORT_FORMAT = "awrepro-report"
REPORT_VERSION = 1


@dataclass(frozen=True)
class StatusKind:
    """What a status means to every output. A new status is one line in STATUS_KINDS."""

    failing: bool  # not a pass: exit 1 (--fail-on any), listed first with its log in reports
    about_code: bool  # says whether the entry's code works: `regression` and `fixed` are judged on these
    junit: str | None  # the JUnit element the testcase gets ("failure", "error", "skipped"; None: a pass)
    style: str  # how a terminal shows it
    icon: str  # how the Markdown summary shows it


STATUS_KINDS: dict[str, StatusKind] = {
    "passed": StatusKind(failing=False, about_code=True, junit=None, style="green", icon="✅"),
    "failed": StatusKind(failing=True, about_code=True, junit="failure", style="bold red", icon="❌"),
    "timeout": StatusKind(failing=True, about_code=True, junit="failure", style="bold red", icon="⏱️"),
    "fetch-error": StatusKind(failing=True, about_code=True, junit="failure", style="red", icon="❌"),
    "setup-error": StatusKind(failing=True, about_code=True, junit="failure", style="red", icon="❌"),
    "skipped": StatusKind(failing=False, about_code=False, junit="skipped", style="yellow", icon="⏭️"),
    "error": StatusKind(failing=True, about_code=False, junit="error", style="bold magenta", icon="💥"),
    # Selected but unfinished when the run was cancelled (Ctrl-C, SIGTERM): not a pass, not a verdict.
    "interrupted": StatusKind(failing=True, about_code=False, junit="error", style="magenta", icon="⏹️"),
    # A Slurm job cancelled, lost or not started (scancel, node failure, preemption, a node without the
    # shared cache) before its smoke test ended: the cluster's fault, not a verdict on the code.
    "infra": StatusKind(failing=True, about_code=False, junit="error", style="magenta", icon="⚠️"),
}
STATUSES = tuple(STATUS_KINDS)
FAILING = tuple(name for name, kind in STATUS_KINDS.items() if kind.failing)
# How much of an entry a pass vouches for, strongest first: a forward pass on random input; the
# model modules import and their classes are found; only a static check (files, byte-compiling).
LEVELS = ("smoke", "import", "static")
SMOKE_LEVELS = LEVELS[:2]  # the levels a smoke test (not a static check) can show (smoke.level)


def partial(level: str | None) -> bool:
    """A pass below the strongest level: the reports say which."""
    return level is not None and level != LEVELS[0]


def kind(status: str) -> StatusKind:
    """A status read back from a file or database may be one this awrepro does not know: a failure."""
    return STATUS_KINDS.get(status, STATUS_KINDS["error"])


@dataclass(frozen=True)
class StageResult:
    name: str  # fetch, setup, smoke
    status: str  # ok, or the entry's status when this stage ended it
    duration: float
    log_path: str


@dataclass(frozen=True)
class Result:
    entry_id: str  # as the user types it: "lapgan", "lapgan/eyescream"
    full_id: str  # always PAPER/IMPL (or PAPER for a paper without code): the history's key
    status: str
    level: str | None  # one of LEVELS once the check itself ran; None when the entry ended before it
    failed_stage: str | None
    duration: float
    note: str
    commit: str | None
    env_key: str | None
    log_path: str | None
    stages: tuple[StageResult, ...] = ()

    @property
    def failing(self) -> bool:
        return kind(self.status).failing

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = data.pop("entry_id")
        data["duration"] = round(self.duration, 3)
        data["stages"] = [{**asdict(s), "duration": round(s.duration, 3)} for s in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        fields = dict(data)
        fields["entry_id"] = fields.pop("id")
        fields["note"] = printable(str(fields.get("note", "")))  # a report to merge is outside input
        fields["stages"] = tuple(StageResult(**s) for s in fields.get("stages", []))
        return cls(**fields)


def summary(results: list[Result]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
