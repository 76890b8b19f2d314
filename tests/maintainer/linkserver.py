"""A real HTTP server on 127.0.0.1 that answers as the web does: 200, redirects, 404, 429, 503, slowly."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    at: float
    authorization: str | None


@dataclass
class State:
    seen: list[Seen] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class LinkServer:
    """Routes (GET and HEAD):

    /ok 200 · /no-head 405 to HEAD, 200 to GET · /moved 301 -> /ok · /moved-308 308 -> /ok ·
    /temporary 302 -> /ok · /gone 404 · /busy 429 (Retry-After: 1) once, then 200 ·
    /limited always 429 (Retry-After: 1) · /down always 503 · /slow answers after 10 s ·
    /wait/N 0.3 s each (requests in flight to them are counted)
    """

    def __init__(self) -> None:
        self.state = State()
        state = self.state

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer()

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                with state.lock:
                    state.seen.append(Seen(self.command, self.path, time.monotonic(), self.headers.get("Authorization")))
                    hits = state.hits[self.path] = state.hits.get(self.path, 0) + 1
                    counted = self.path.startswith("/wait/")  # only these: a timed-out /slow outlives its client
                    state.in_flight += counted
                    state.most_in_flight = max(state.most_in_flight, state.in_flight)
                try:
                    self._route(hits)
                finally:
                    with state.lock:
                        state.in_flight -= counted

            def _route(self, hits: int) -> None:
                path = self.path
                if path == "/ok" or (path == "/busy" and hits > 1):
                    return self._send(200)
                if path == "/no-head":
                    return self._send(405 if self.command == "HEAD" else 200)
                if path in ("/moved", "/moved-308", "/temporary"):
                    code = {"/moved": 301, "/moved-308": 308, "/temporary": 302}[path]
                    return self._send(code, {"Location": "/ok"})
                if path in ("/busy", "/limited"):
                    return self._send(429, {"Retry-After": "1"})
                if path == "/down":
                    return self._send(503, {"Retry-After": "0"})
                if path == "/slow":
                    time.sleep(10)  # well past the tests' --timeout 3, which a loaded machine needs
                    return self._send(200)
                if path.startswith("/wait/"):
                    time.sleep(0.3)
                    return self._send(200)
                return self._send(404)

            def _send(self, code: int, headers: dict[str, str] | None = None) -> None:
                body = b"" if self.command == "HEAD" else b"hello\n"
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout): nothing to tell it

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self, path: str) -> list[Seen]:
        with self.state.lock:
            return [seen for seen in self.state.seen if seen.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
