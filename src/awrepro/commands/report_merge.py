"""``awrepro report merge``: join the JSON reports of shards into one (and JUnit/Markdown from it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from awrepro import report, report_files
from awrepro.commands.check import exit_code
from awrepro.report_files import Reports
from awrepro.results import Result


def run(paths: Sequence[Path], reports: Reports, fail_on: str) -> int:
    from awrepro.errors import UsageError

    if fail_on not in ("any", "regression", "never"):  # as `check` does: a typo must not mean "any"
        raise UsageError(f"--fail-on {fail_on!r}: use any or never")
    loaded = [report_files.load_json_report(path) for path in paths]
    by_entry: dict[str, Result] = {}
    for data in loaded:
        for item in data["results"]:
            result = Result.from_dict(item)
            by_entry[result.full_id] = result  # a later report wins for an entry run twice
    results = list(by_entry.values())
    report.print_check_table(results, set())
    interrupted = any(d.get("interrupted") for d in loaded)
    report_files.write_all(
        results,
        reports,
        registry=loaded[0].get("registry", "") if loaded else "",
        started_at=min((d.get("started_at", "") for d in loaded), default=""),
        finished_at=max((d.get("finished_at", "") for d in loaded), default=""),
        interrupted=interrupted,
    )
    return exit_code(results, [], "any" if fail_on == "regression" else fail_on)
