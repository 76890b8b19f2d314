"""A real HTTPS server on 127.0.0.1 (a self-signed certificate made with openssl) that serves
bare repositories with git's own ``git http-backend`` (smart HTTP, as GitHub speaks it) and
answers 301 for repositories that moved."""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import threading
from pathlib import Path

from tests.gitfixtures import git


class MovedRepositories:
    """``https://127.0.0.1:PORT/NAME.git``; ``moved(old, new)`` redirects ``/old...`` to ``/new.git...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.served = root / "served"
        self.served.mkdir(parents=True)
        self.cert = root / "cert.pem"
        key = root / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(self.cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.redirects: dict[str, str] = {}
        redirects = self.redirects

        served = self.served

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # with lengths: git's TLS library wants no read-until-close

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self._answer()

            def _answer(self) -> None:
                for old, new in redirects.items():
                    if self.path.startswith(f"/{old}/"):
                        self.send_response(301)
                        self.send_header("Location", f"/{new}.git/" + self.path[len(old) + 2:])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self._backend()

            def _backend(self) -> None:
                """Run ``git http-backend`` as the CGI program it is."""
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                env = {**os.environ, "GIT_PROJECT_ROOT": str(served), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                       "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "REMOTE_ADDR": "127.0.0.1"}
                done = subprocess.run(["git", "-c", "uploadpack.allowFilter=true", "http-backend"], input=body,
                                      env=env, capture_output=True, timeout=60)
                head, _, content = done.stdout.partition(b"\r\n\r\n")
                headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "status":
                        self.send_header(name, value.strip())
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{name}"

    def add(self, name: str) -> str:
        """A bare repository ``name.git`` with one commit; returns its sha."""
        work = self.root / "work" / name
        work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", "initial", cwd=work)
        bare = self.served / f"{name}.git"
        git("clone", "-q", "--bare", str(work), str(bare))
        return git("rev-parse", "HEAD", cwd=work)

    def moved(self, old: str, new: str) -> None:
        self.redirects[old] = new

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
