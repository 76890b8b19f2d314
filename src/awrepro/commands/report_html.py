"""``awrepro report html DIR``: a static dashboard a maintainer can publish (GitHub Pages).

One ``index.html``, everything inline (styles, script, the history strips as SVG): no CDN, no
network, it works from ``file://``. One row per implementation, papers without code too: status
and level, time per stage (from the run's JSON report), since when, the last results as a
strip, links to the code at its pin, the PDF and, for failures, the log's tail. A filter box
narrows the rows; ``index.html?q=WORDS`` opens it filtered.
"""

from __future__ import annotations

import html
from pathlib import Path

from awrepro import badges, console, history, report_files
from awrepro.constants import EXIT_OK
from awrepro.model import GitCode
from awrepro.registry import Entry, LoadedRegistry
from awrepro.results import FAILING, Result

STAGES = ("fetch", "setup", "smoke")
STRIP_COLOURS = {"passed": "#1a7f37", "static": "#bf8700", "failing": "#cf222e", "skipped": "#8c959f"}
_CELL, _GAP, _HEIGHT = 8, 2, 16


def run(registry: LoadedRegistry, folder: Path, db: Path, report: Path | None, *, runs: int) -> int:
    data = report_files.load_json_report(report) if report else None
    results = {r.full_id: r for r in (Result.from_dict(item) for item in (data or {}).get("results", []))}
    records = history.all_records(db)
    rows = [_row(entry, records.get(entry.full_id, [])[:runs], results.get(entry.full_id)) for entry in registry.entries()]
    title = f"awrepro: {registry.path.name}"
    when = f"last run {data['started_at']}" if data else "from the results history"
    page = _PAGE.format(title=html.escape(title), when=html.escape(when), count=len(rows), rows="\n".join(rows),
                        style=_STYLE, script=_SCRIPT)
    target = folder / "index.html"
    report_files.write_atomic(target, page)
    console.print_plain(f"wrote {target} ({len(rows)} rows)")
    return EXIT_OK


def _row(entry: Entry, runs: list[history.Record], result: Result | None) -> str:
    paper = entry.paper
    shown = badges.badge(entry, runs)
    stage_times = {s.name: f"{s.duration:.1f} s" for s in result.stages} if result else {}
    level = runs[0].level if runs and runs[0].level else ""
    words = " ".join([entry.id, paper.title, paper.section, shown.kind, shown.text, level, *paper.tags]).lower()
    cells = [
        f'<td class="id"><code>{_e(entry.id)}</code></td>',
        f'<td>{_e(paper.title)}<div class="sub">{_e(paper.venue)} {paper.year} · {_e(paper.section)}</div></td>',
        # A dot drawn by the style sheet, not the badge's emoji: no emoji font is needed to read it.
        f'<td class="status {shown.kind}">{_e(shown.text)}</td>',
        f"<td>{_e(level)}</td>",
        *(f'<td class="num">{stage_times.get(stage, "")}</td>' for stage in STAGES),
        f"<td>{_e(_since(runs))}</td>",
        f'<td class="strip">{strip(runs)}</td>',
        f"<td>{_links(entry, result)}</td>",
    ]
    return f'<tr data-search="{_e(words)}">' + "".join(cells) + "</tr>"


def _since(runs: list[history.Record]) -> str:
    if not runs:
        return ""
    same = history.streak(runs)
    return f"{same[-1].finished_at[:10]} ({len(same)} run{'s' * (len(same) != 1)})"


def strip(runs: list[history.Record]) -> str:
    """The runs (newest first) as coloured cells, oldest on the left; each says when and what."""
    cells = []
    for index, record in enumerate(reversed(runs)):
        kind = _kind(record)
        tip = f"{record.finished_at} {record.status}" + (f" ({record.level})" if record.level else "")
        cells.append(f'<rect x="{index * (_CELL + _GAP)}" y="0" width="{_CELL}" height="{_HEIGHT}" rx="1" '
                     f'fill="{STRIP_COLOURS[kind]}" class="{kind}"><title>{_e(tip)}</title></rect>')
    width = max(len(runs) * (_CELL + _GAP) - _GAP, 0)
    label = f"last {len(runs)} results" if runs else "no runs yet"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_HEIGHT}" role="img" '
            f'aria-label="{label}">{"".join(cells)}</svg>')


def _kind(record: history.Record) -> str:
    if record.status == "passed":
        return "static" if record.level == "static" else "passed"
    return "failing" if record.status in FAILING else "skipped"


def _links(entry: Entry, result: Result | None) -> str:
    parts = []
    code = entry.impl.code if entry.impl else None
    if isinstance(code, GitCode):
        url = code.git.removesuffix(".git")
        pinned = f"{url}/tree/{code.commit}" + (f"/{code.subdir}" if code.subdir else "")
        parts.append(f'<a href="{_e(pinned if url.startswith("https://github.com/") else code.git)}">code</a>')
    elif code is not None:
        parts.append(f'<a href="{_e(code.archive)}">code</a>')
    elif entry.paper.listed_as:
        parts.append(f'<a href="{_e(entry.paper.listed_as)}">listed code</a>')
    if entry.paper.pdf:
        parts.append(f'<a href="{_e(entry.paper.pdf)}">pdf</a>')
    links = " · ".join(parts)
    if result is not None and result.failing:
        failed = next((s for s in result.stages if s.name == result.failed_stage), None)
        tail = report_files.log_tail(failed.log_path if failed else result.log_path)
        if tail:
            links += f"<details><summary>log</summary><pre>{_e(tail)}</pre></details>"
    return links


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
header p { margin: 0 0 .8rem; color: #59636e; }
#filter { font: inherit; padding: .35rem .6rem; width: 24rem; max-width: 100%; border: 1px solid #d1d9e0; border-radius: 6px; }
table { border-collapse: collapse; margin-top: .8rem; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #d1d9e0; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.id, td.status { white-space: nowrap; }
.sub { color: #59636e; font-size: 12px; }
.status.passed { color: #1a7f37; } .status.static { color: #9a6700; } .status.failing { color: #cf222e; font-weight: 600; }
.status.skipped, .status.no-code, .status.draft, .status.unchecked { color: #59636e; }
.status::before { content: ""; display: inline-block; width: .6rem; height: .6rem; border-radius: 50%; margin-right: .4rem; background: currentColor; }
.status.no-code::before, .status.draft::before, .status.unchecked::before { background: none; border: 1px solid currentColor; }
pre { max-width: 40rem; overflow: auto; background: #f6f8fa; padding: .5rem; font-size: 12px; }
#count { color: #59636e; }
"""

_SCRIPT = """
const box = document.getElementById('filter');
const rows = Array.from(document.querySelectorAll('#entries tbody tr'));
const count = document.getElementById('count');
function apply() {
  const words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  for (const row of rows) {
    const hit = words.every(word => row.dataset.search.includes(word));
    row.hidden = !hit;
    shown += hit ? 1 : 0;
  }
  count.textContent = shown + ' of ' + rows.length + ' shown';
}
box.addEventListener('input', apply);
const asked = new URLSearchParams(location.search).get('q');
if (asked) box.value = asked;
apply();
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>{count} rows, {when}. Made by <code>awrepro report html</code>.</p>
<input id="filter" type="search" placeholder="Filter: id, paper, section, status, tag" aria-label="Filter the rows">
</header>
<table id="entries">
<thead><tr><th>Entry</th><th>Paper</th><th>Status</th><th>Level</th><th>Fetch</th><th>Setup</th><th>Smoke</th><th>Since</th><th>History</th><th>Links</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p id="count"></p>
<script>{script}</script>
</body>
</html>
"""
