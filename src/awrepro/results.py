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

REPORT_FORMAT = "awrepro-report"
REPORT_VERSION = 1
STATUSES = ("passed", "failed", "timeout", "fetch-error", "setup-error", "skipped", "error")
FAILING = ("failed", "timeout", "fetch-error", "setup-error", "error")


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
    level: str | None  # "smoke" or "static" when the check ran
    failed_stage: str | None
    duration: float
    note: str
    commit: str | None
    env_key: str | None
    log_path: str | None
    stages: tuple[StageResult, ...] = ()

    @property
    def failing(self) -> bool:
        return self.status in FAILING

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
        fields["stages"] = tuple(StageResult(**s) for s in fields.get("stages", []))
        return cls(**fields)


def summary(results: list[Result]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
