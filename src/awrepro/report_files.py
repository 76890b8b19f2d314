"""Reports for CI: versioned JSON, JUnit XML and a Markdown summary (see ``results.py`` for the JSON)."""

from __future__ import annotations

import html
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awrepro import __version__
from awrepro.errors import UsageError
from awrepro.results import REPORT_FORMAT, REPORT_VERSION, Result, kind, partial, summary
from awrepro.sanitize import log_text, markdown_cell, printable

_TAIL_LINES = 60
_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class Reports:
    """Where to write reports (None: not wanted)."""

    json: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None


def write_all(results: Sequence[Result], reports: Reports, *, registry: str, started_at: str, finished_at: str,
              interrupted: bool) -> None:
    """Every report asked for, plus the Markdown summary on $GITHUB_STEP_SUMMARY when it is set."""
    if reports.json:
        data = json_report(results, registry=registry, started_at=started_at, finished_at=finished_at,
                           interrupted=interrupted)
        write_atomic(reports.json, json.dumps(data, indent=2) + "\n")
    if reports.junit:
        write_atomic(reports.junit, junit_xml(results))
    summary = markdown(results)
    if reports.markdown:
        write_atomic(reports.markdown, summary)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:  # GitHub Actions shows this file on the run's page
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_writable(path: Path, option: str) -> None:
    """Refuse a report path that cannot be written before a long run, not after it."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot create files in {folder}")


def json_report(results: Sequence[Result], *, registry: str, started_at: str, finished_at: str,
                interrupted: bool) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "awrepro": __version__,
        "registry": registry,
        "started_at": started_at,
        "finished_at": finished_at,
        "interrupted": interrupted,
        "summary": summary(list(results)),
        "results": [r.to_dict() for r in results],
    }


def load_json_report(path: Path) -> dict[str, Any]:
    from awrepro.errors import UsageError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable awrepro JSON report ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT or data.get("version") != REPORT_VERSION:
        raise UsageError(f"{path}: not an awrepro JSON report of version {REPORT_VERSION}")
    return data


def log_tail(path: str | None, lines: int = _TAIL_LINES) -> str:
    """The last lines of a log, as a report may show them (see ``sanitize.log_text``)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as log:  # bytes: text mode would turn a progress bar's \r into lines
            log.seek(max(0, log.seek(0, os.SEEK_END) - _TAIL_BYTES))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(log_text(text).splitlines()[-lines:])


def junit_xml(results: Sequence[Result]) -> str:
    """One testcase per entry; its element (failure, error, skipped) is the status's ``junit`` kind.
    Every text is sanitised, so the file is valid XML 1.0 whatever the smoke tests printed."""
    elements = [kind(r.status).junit for r in results]
    suite = ET.Element("testsuite", {
        "name": "awrepro",
        "tests": str(len(results)),
        "failures": str(elements.count("failure")),
        "errors": str(elements.count("error")),
        "skipped": str(elements.count("skipped")),
        "time": f"{sum(r.duration for r in results):.3f}",
    })
    for result, element in zip(results, elements):
        case = ET.SubElement(suite, "testcase", {
            "classname": printable(f"awrepro.{result.full_id.split('/')[0]}"),
            "name": printable(result.entry_id),
            "time": f"{result.duration:.3f}",
        })
        if element == "skipped":
            ET.SubElement(case, "skipped", {"message": printable(result.note)})
        elif element is not None:
            ET.SubElement(case, element, {"message": printable(result.note), "type": result.status}).text = \
                log_tail(result.log_path)
        elif partial(result.level):
            ET.SubElement(case, "system-out").text = printable(f"passed at the {result.level} level: {result.note}".rstrip(": "))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def markdown(results: Sequence[Result], *, title: str = "awrepro check") -> str:
    """A summary for GitHub: counts, a table with the failures first, then each failure's log tail
    in a collapsed block. Everything from outside is HTML-escaped."""
    counts = summary(list(results))
    parts = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    failing = [r for r in results if r.failing]
    lines = [f"## {title}", "", parts or "no entries", "",
             "| Entry | Status | Level | Failed stage | Duration | Note |",
             "| --- | --- | --- | --- | ---: | --- |"]
    for r in [*failing, *(r for r in results if not r.failing)]:
        lines.append(f"| `{markdown_cell(r.entry_id)}` | {kind(r.status).icon} {r.status} | {r.level or ''} "
                     f"| {r.failed_stage or ''} | {r.duration:.1f} s | {markdown_cell(r.note)} |")
    for r in failing:
        tail = log_tail(r.log_path)
        if not tail:
            continue
        lines += ["", f"<details><summary><code>{markdown_cell(r.entry_id)}</code> {r.status}: last lines of "
                      f"<code>{markdown_cell(r.log_path or '')}</code></summary>", "",
                  "<pre>", html.escape(tail, quote=False), "</pre>", "", "</details>"]
    return "\n".join(lines) + "\n"
