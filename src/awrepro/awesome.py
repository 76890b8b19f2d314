"""Reading an awesome-list in Markdown: headings are sections, each bullet a paper.

A paper's bullet looks like ``* TITLE [VENUE YEAR] [[__pdf__](URL)] [[__code__](URL)]``, and may
wrap onto the next lines; the lines after it, up to a blank line or the next bullet, are its
summary. Bullets without a ``[VENUE]`` bracket (a table of contents, plain links) are not papers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[*+-]\s+(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# A bracket that is not a link text: no brackets inside, not followed by "(".
_VENUE = re.compile(r"\[([^\[\]]+)\](?!\()")
_LINK = re.compile(r"\[\s*\[\s*_*\s*([A-Za-z]+)\s*_*\s*\]\(\s*(\S+?)\s*\)\s*\]")
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
# Where the venue's name ends: a date (day, month or year) or a comma before one.
_DATE_START = re.compile(rf"[,\s]+(?:\d{{1,2}}(?:st|nd|rd|th)\b|{_MONTH}(?=\s|$)|(?:19|20)\d\d\b)")
# "Invited Review of JOURNAL": the venue is the journal.
_VENUE_KIND = re.compile(r"^(?:invited|extended|special)\s+(?:review|paper|version|issue)\s+(?:of|in)\s+", re.I)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:pdf|abs)/(\d{4}\.\d{4,5})(?:v\d+)?(?:\.pdf)?/?$", re.I)
_FORGES = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")


@dataclass(frozen=True)
class CodeLink:
    """What a list's code link points at: a repository (with a folder), or only a page."""

    link: str  # as the list writes it
    repository: str | None  # https://HOST/OWNER/REPO, when the link names one
    subdir: str | None = None

    @property
    def owner(self) -> str:
        """A short name for the code: its owner on a forge, else the first label of the host."""
        parts = urlsplit(self.link)
        path = [p for p in parts.path.split("/") if p]
        if parts.hostname in _FORGES and path:
            return path[0]
        return (parts.hostname or "code").split(".")[0]


@dataclass(frozen=True)
class ListedPaper:
    line: int  # where its bullet starts (1-based)
    section: str
    title: str
    venue: str
    year: int | None
    arxiv: str | None
    pdf: str | None
    code: CodeLink | None
    summary: str | None
    head_line: int = 0  # the line where its title, venue and links end (before the summary)


def parse(text: str) -> tuple[list[ListedPaper], list[str]]:
    """The papers of the list, in order, and one problem line per bullet that could not be read."""
    papers: list[ListedPaper] = []
    problems: list[str] = []
    section = ""
    block: list[tuple[int, str]] = []  # (line number, text) of the bullet being read

    def flush() -> None:
        if block:
            start = block[0][0]
            paper, problem = _paper(start, section, block)
            if paper:
                papers.append(paper)
            elif problem:
                problems.append(f"line {start}: {problem}")
        block.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line) if not _RULE.match(line) else None
        if heading or bullet or not line.strip() or _RULE.match(line):
            flush()
        if heading:
            section = _plain(heading.group(2))
        elif bullet:
            block.append((number, bullet.group(1).strip()))
        elif line.strip() and block:
            block.append((number, line.strip()))
    flush()
    return papers, problems


def _paper(line: int, section: str, block: list[tuple[int, str]]) -> tuple[ListedPaper | None, str | None]:
    text = " ".join(part for _, part in block)
    venue_match = _VENUE.search(text)
    if venue_match is None:
        return None, None  # not a paper: a table of contents, a plain link
    title = _plain(text[: venue_match.start()])
    if not title:
        return None, f"a bullet with [{venue_match.group(1)}] but no title before it"
    links = {label.lower(): url for label, url in _LINK.findall(text)}
    after = max([venue_match.end(), *(m.end() for m in _LINK.finditer(text))])
    venue, year = parse_venue(venue_match.group(1))
    pdf = links.get("pdf") or links.get("paper")
    arxiv_match = _ARXIV_URL.search(pdf) if pdf else None
    arxiv = arxiv_match.group(1) if arxiv_match else None
    if year is None and arxiv:
        year = 2000 + int(arxiv[:2])  # arXiv ids start with YYMM
    code = classify_code(links["code"]) if "code" in links else None
    summary = " ".join(text[after:].split()) or None
    return ListedPaper(line, section, title, venue, year, arxiv, pdf, code, summary, _line_at(block, after - 1)), None


def _line_at(block: list[tuple[int, str]], offset: int) -> int:
    """The line of the block that holds character ``offset`` of the block's joined text."""
    start = 0
    for number, part in block:
        start += len(part) + 1
        if offset < start:
            return number
    return block[-1][0]


def parse_venue(bracket: str) -> tuple[str, int | None]:
    """``arXiv 1st May 2020`` -> ``("arXiv", 2020)``; ``Invited Review of X`` -> ``("X", None)``."""
    text = " ".join(bracket.split())
    years = _YEAR.findall(text)
    cut = _DATE_START.search(text)
    venue = text[: cut.start()] if cut else text
    venue = _VENUE_KIND.sub("", venue).strip(" ,") or text
    return venue, int(years[-1]) if years else None


def classify_code(link: str) -> CodeLink:
    """A forge repository (``tree/BRANCH/PATH`` adds a folder), or just a page that names code."""
    parts = urlsplit(link)
    path = [p for p in parts.path.split("/") if p]
    if parts.scheme in ("http", "https") and parts.hostname in _FORGES and len(path) >= 2:
        repository = f"https://{parts.hostname}/{path[0]}/{path[1].removesuffix('.git')}"
        if len(path) == 2 and not parts.fragment:
            return CodeLink(link, repository)
        if len(path) > 4 and path[2] == "tree":
            return CodeLink(link, repository, "/".join(path[4:]))
        if len(path) == 4 and path[2] == "tree":
            return CodeLink(link, repository)
    return CodeLink(link, None)  # an organisation, a wiki page, a personal site


def _plain(text: str) -> str:
    """Markdown emphasis and extra spaces removed."""
    return " ".join(re.sub(r"(\*\*|__|`)", "", text).split())


def _normal_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", title.casefold())


def find(paper: ListedPaper, known: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The id of the registry paper this list paper is: same arXiv id, else same PDF, else same title."""
    for key, value in (("arxiv", paper.arxiv), ("pdf", paper.pdf)):
        if value:
            for paper_id, data in known.items():
                if data.get(key) == value:
                    return paper_id
    for paper_id, data in known.items():
        if _normal_title(str(data.get("title", ""))) == _normal_title(paper.title):
            return paper_id
    return None


_STOPWORDS = {"a", "an", "the", "of", "for", "in", "on", "with", "and", "to", "via", "by", "using", "is", "not"}


def slug(text: str) -> str:
    """Lowercase letters and digits joined by single '-' (the registry's id rule)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def short_id(title: str, taken: set[str]) -> str:
    """An id a user would type: the name before a colon (``Longformer: ...`` -> ``longformer``),
    else the first significant words, more of them until the id is not taken."""
    name, colon, _ = title.partition(":")
    if colon and 1 <= len(name.split()) <= 2 and slug(name):
        candidates = [slug(name)]
    else:
        candidates = []
    words = [w for w in re.split(r"\s+", title.replace(":", " ")) if slug(w) and w.lower() not in _STOPWORDS]
    candidates += ["-".join(slug(w) for w in words[:count]) for count in range(2, len(words) + 1)]
    for candidate in candidates:
        if candidate and candidate not in taken:
            return candidate
    base = candidates[-1] if candidates else "paper"
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
