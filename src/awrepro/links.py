"""Checking one URL: HTTP with httpx (HEAD, then GET where HEAD is refused), git with ``ls-remote``.

Redirects are followed hop by hop, so each is seen: a permanent one (301, 308) makes the link
``redirected`` and suggests the new URL; temporary ones are normal and leave it ``ok``. 429 and
503 are retried, waiting as ``Retry-After`` says, within the run's time budget. A GitHub token
goes only to GitHub's own hosts over https, and never into a result.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from awrepro import __version__, git
from awrepro.errors import FetchError

# The statuses of a link, in the order reports list them; only `broken` fails a run.
STATUSES = ("broken", "timeout", "rate-limited", "redirected", "ok")
CACHEABLE = ("ok", "redirected")  # failures are never cached: a fixed link is seen at once
PERMANENT = (301, 308)
RETRIED = (429, 503)
REFUSED_HEAD = (400, 403, 405, 501)  # servers that answer HEAD so, or not at all: ask with GET
MAX_REDIRECTS = 10
TRIES = 3
MAX_WAIT = 60.0  # the longest Retry-After honoured; longer ones leave the link rate-limited
GITHUB_HOSTS = ("github.com", "api.github.com", "raw.githubusercontent.com", "codeload.github.com",
                "objects.githubusercontent.com")


@dataclass(frozen=True)
class Outcome:
    status: str
    http_status: int | None = None
    final_url: str | None = None  # where the redirects ended
    suggestion: str | None = None  # the new URL, after a permanent redirect
    note: str = ""


class Budget:
    """The run's time budget: no new request starts, and no retry waits, past its deadline."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def sends_token(url: str) -> bool:
    """Only GitHub's own hosts, and only over https, ever see the token."""
    parts = urlsplit(url)
    return parts.scheme == "https" and (parts.hostname or "") in GITHUB_HOSTS


class Checker:
    """Checks URLs from many threads, at most ``per_host`` at once against one host."""

    def __init__(self, *, timeout: float, per_host: int, budget: Budget, environ: Mapping[str, str]) -> None:
        self.budget = budget
        self.per_host = per_host
        self._token = environ.get("GITHUB_TOKEN") or None
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    headers={"User-Agent": f"awrepro/{__version__} (link check)"})

    def close(self) -> None:
        self._client.close()

    def check(self, url: str, kind: str) -> Outcome:
        if self.budget.left() <= 0:
            return Outcome("timeout", note="not checked: the run's time budget was spent")
        if kind == "git":
            return _check_git(url)
        try:
            return self._check_http(url)
        except httpx.TimeoutException:
            return Outcome("timeout", note="no answer in time")
        except httpx.HTTPError as exc:
            return Outcome("broken", note=f"cannot connect: {exc}" if isinstance(exc, httpx.ConnectError) else str(exc))

    def _check_http(self, url: str) -> Outcome:
        current, permanent = url, True
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(current)
            if response.is_redirect and "location" in response.headers:
                permanent = permanent and response.status_code in PERMANENT
                current = urljoin(current, response.headers["location"])
                continue
            return _judge(url, current, permanent, response)
        return Outcome("broken", note=f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str) -> httpx.Response:
        """HEAD (GET where HEAD is refused), retrying 429/503 as ``Retry-After`` asks."""
        method = "HEAD"
        for attempt in range(TRIES):
            response = self._send(method, url)
            if method == "HEAD" and response.status_code in REFUSED_HEAD:
                method = "GET"
                response = self._send(method, url)
            if response.status_code not in RETRIED or attempt == TRIES - 1:
                return response
            wait = _retry_after(response.headers.get("retry-after"), default=2.0**attempt)
            if wait > MAX_WAIT or wait >= self.budget.left():
                return response
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token and sends_token(url) else {}
        with self._host(url):
            request = self._client.build_request(method, url, headers=headers)
            response = self._client.send(request, stream=True)  # a GET reads no body
            response.close()
            return response

    def _host(self, url: str) -> threading.BoundedSemaphore:
        host = urlsplit(url).netloc.lower()
        with self._lock:
            if host not in self._hosts:
                self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return self._hosts[host]


def _judge(url: str, final: str, permanent: bool, response: httpx.Response) -> Outcome:
    code = response.status_code
    moved = final != url
    if code == 429:
        return Outcome("rate-limited", code, final if moved else None, note="429 Too Many Requests: try later")
    if code >= 400:
        return Outcome("broken", code, final if moved else None, note=f"{code} {response.reason_phrase}".strip())
    if moved and permanent:
        return Outcome("redirected", code, final, suggestion=final, note=f"moved permanently: use {final}")
    if moved:
        return Outcome("ok", code, final, note=f"temporary redirect to {final}")
    return Outcome("ok", code)


def _retry_after(value: str | None, default: float) -> float:
    """``Retry-After``: seconds, or an HTTP date."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _check_git(url: str) -> Outcome:
    """A repository answers ``git ls-remote`` (through the user's git configuration)."""
    try:
        upstream = git.upstream_head(url, timeout=60)
    except FetchError as exc:
        status = "timeout" if "timed out" in exc.message else "broken"
        return Outcome(status, note=exc.message)
    if upstream.moved_to and upstream.moved_to != url.rstrip("/"):
        return Outcome("redirected", final_url=upstream.moved_to, suggestion=upstream.moved_to,
                       note=f"moved: use {upstream.moved_to}")
    return Outcome("ok", note=f"default branch {(upstream.branch or 'HEAD').removeprefix('refs/heads/')}")
