"""``awrepro show ID``: everything about one entry, and its last runs."""

from __future__ import annotations

import json
from pathlib import Path

from awrepro import console, describe, history
from awrepro.cache import Cache
from awrepro.commands.log import log_folder
from awrepro.model import GitCode
from awrepro.registry import Entry, LoadedRegistry
from awrepro.results import partial

_RUNS_SHOWN = 5


def run(registry: LoadedRegistry, cache_dir: Path | None, entry_id: str, *, as_json: bool) -> int:
    paper_id = entry_id.partition("/")[0]
    selected = registry.select([entry_id])  # raises, with suggestions, for an unknown id
    if "/" not in entry_id:
        selected = registry.select([f"{paper_id}/*"])
    paper = registry.papers[paper_id]
    db = Cache.open(cache_dir).results_db
    if as_json:
        records = history.latest(db)
        data = describe.paper_data(paper_id, paper, selected, records, full=True)
        for impl_data, entry in zip(data["implementations"], [e for e in selected if e.impl]):
            impl_data["runs"] = [describe.status_data(r) for r in history.entry_history(db, entry.full_id, _RUNS_SHOWN)]
        console.print_plain(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    lines = _paper_lines(paper_id, registry)
    for entry in selected:
        lines.append("")
        lines.extend(_entry_lines(entry, db))
    from awrepro import sandbox

    lines += ["", f"sandbox: {sandbox.describe_mode()}"]
    out = console.out()
    for line in lines:
        out.print(line)
    return 0


def _field(name: str, value: object) -> str:
    return f"  {name:<11}{value}"


def _paper_lines(paper_id: str, registry: LoadedRegistry) -> list[str]:
    paper = registry.papers[paper_id]
    lines = [f"{paper_id}: {paper.title}", _field("venue", f"{paper.venue} {paper.year}")]
    if paper.authors:
        lines.append(_field("authors", ", ".join(paper.authors)))
    if paper.arxiv:
        lines.append(_field("arXiv", paper.arxiv))
    if paper.pdf:
        lines.append(_field("pdf", paper.pdf))
    lines.append(_field("section", paper.section))
    if paper.tags:
        lines.append(_field("tags", ", ".join(paper.tags)))
    if paper.summary:
        lines.append(_field("summary", paper.summary))
    if not paper.impl:
        lines.append(_field("code", f"none: {paper.no_code}" if paper.no_code else Entry(paper_id, paper, None, primary=True).why_not_checked()))
    return lines


def _entry_lines(entry: Entry, db: Path) -> list[str]:
    impl = entry.impl
    if impl is None:
        return []
    role = "primary" if entry.primary else "alternative"
    head = f"implementation {entry.id} ({entry.name}, {role})"
    lines = [head + (f": {impl.description}" if impl.description else "")]
    code = impl.code
    owner = "the authors' code" if code.official else "not the authors' code"
    if isinstance(code, GitCode):
        pin = f"@ {code.commit}"
    else:
        pin = f"sha256 {code.sha256}" if code.sha256 else "(unpinned: no sha256)"
    lines.append(_field("code", f"{code.url} {pin} ({owner})"))
    for name, value in (("subdir", code.subdir), ("listed as", code.listed_as)):
        if value:
            lines.append(_field(name, value))
    if isinstance(code, GitCode) and code.sparse:
        lines.append(_field("sparse", ", ".join(code.sparse)))
    env = impl.env
    lines.append(_field("python", f"{env.python} ({env.backend}, install: {env.install})"))
    for name, values in (
        ("requires", env.requirements),
        ("no-deps", env.no_deps),
        ("find-links", env.find_links),
        ("patches", env.patches),
        ("steps", env.steps),
    ):
        if values:
            lines.append(_field(name, ", ".join(values)))
    if env.requirements_file:
        lines.append(_field("req. file", env.requirements_file))
    if env.exclude_newer:  # the date bound of resolution (exclude_newer), and who is exempt from it
        exempt = f" (exempt: {', '.join(env.exclude_newer_exempt)})" if env.exclude_newer_exempt else ""
        lines.append(_field("as of", f"{env.exclude_newer}{exempt}"))
    if env.vars:
        lines.append(_field("vars", " ".join(f"{k}={v}" for k, v in env.vars.items())))
    lines.append(_field("smoke", _smoke_summary(entry)))
    for index, note in enumerate(impl.notes):
        lines.append(_field("notes" if index == 0 else "", note))
    if impl.smoke.expect:
        lines.append(_field("expects", impl.smoke.expect))
    if impl.smoke.static:
        static = impl.smoke.static
        interpreter = f" with Python {static.python}" if static.python else ""
        lines.append(_field("static", f"{static.reason} (check{interpreter}: {static.command or 'inline script'})"))
    runs = history.entry_history(db, entry.full_id, _RUNS_SHOWN)
    if not runs:
        lines.append(_field("last runs", "none yet (`awrepro check " + entry.id + "`)"))
    for index, record in enumerate(runs):
        level = f" ({record.level})" if record.level else ""
        note = f": {record.note}" if record.note else ""
        lines.append(_field("last runs" if index == 0 else "", f"{record.finished_at} {record.status}{level}{note}"))
        folder = log_folder(record)
        if folder is not None:
            lines.append(_field("", f"  logs: {folder}"))
    return lines


def _smoke_summary(entry: Entry) -> str:
    assert entry.impl is not None
    smoke = entry.impl.smoke
    if smoke.command:
        body = f"command: {smoke.command}"
    elif smoke.script:
        body = f"Python script ({len(smoke.script.strip().splitlines())} lines)"
    elif smoke.static:
        body = "none (static check only)"
    else:
        return "none yet: a draft (add a [smoke] table)"
    gpu = ", needs a GPU" if smoke.gpu else ""
    level = f", level {smoke.level}" if partial(smoke.level) and smoke.runnable else ""
    network = ", network cut" if not smoke.network else ""
    return f"{body}; cwd {smoke.cwd}, timeout {smoke.timeout} s{gpu}{level}{network}"
