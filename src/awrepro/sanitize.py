"""Text from outside (smoke-test output, git's and uv's messages, registries, reports to merge),
made safe for each output.

Third-party output may hold anything: ANSI escapes, BEL, NUL, bidi overrides, invalid UTF-8.
Every output shows such characters as escapes (``\\x1b``), never as themselves, so a terminal
never interprets them, plain output has no control codes, JUnit is valid XML 1.0 and JSON is
valid UTF-8. Invalid UTF-8 arrives as U+FFFD (decoded with ``errors="replace"``) or as lone
surrogates (``surrogateescape``): both are shown as U+FFFD.
"""

from __future__ import annotations

import html
import re

# C0 and C1 controls, DEL, bidi overrides and isolates, lone surrogates, and U+FFFE/U+FFFF
# (not allowed in XML 1.0). Tabs and newlines are allowed only in multi-line text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_UNSAFE_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
# Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, links) and two-character ones.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """One line with every control character shown as an escape (``\\x1b[31m``, ``\\x07``, ``\\n``).
    Idempotent: an escape is plain text."""
    return _UNSAFE.sub(_escape, text)


def log_text(text: str) -> str:
    """A log's text for a report: colour and cursor sequences dropped, each line as a terminal
    would last show it (progress bars rewrite a line with ``\\r``), other controls escaped."""
    text = _ESCAPE_SEQUENCE.sub("", text.replace("\r\n", "\n"))
    lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    return _UNSAFE_IN_LINES.sub(_escape, "\n".join(lines))


def markdown_cell(text: str) -> str:
    """Text for a cell of a GitHub Markdown table: one line, HTML-escaped (``<class 'X'>`` shows as it is)."""
    return html.escape(printable(text), quote=False).replace("|", "\\|")

