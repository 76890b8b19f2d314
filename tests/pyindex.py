"""A real package index on 127.0.0.1 (PEP 691 JSON with PEP 700 upload times), serving wheels the tests write."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.envs.conftest import write_wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class PackageIndex:
    """``add`` wheels with an upload time; ``url`` is the index to give as ``index_url``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, list[tuple[Path, str]]] = {}
        self.requested: list[str] = []  # paths asked for, in order
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 (http.server's names)
                self.head_only = True
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                index.requested.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if len(parts) == 2 and parts[0] == "simple":
                    self._send(JSON_TYPE, index.page(parts[1]))
                elif len(parts) == 2 and parts[0] == "files" and (index.folder / parts[1]).is_file():
                    self._send("application/octet-stream", (index.folder / parts[1]).read_bytes())
                else:
                    self._send("text/plain", b"not found", 404)

            def _send(self, kind: str, body: bytes | None, code: int = 200) -> None:
                if body is None:
                    kind, body, code = "text/plain", b"not found", 404
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not getattr(self, "head_only", False):
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def add(self, name: str, version: str, uploaded: str, module_text: str | None = None,
            requires: tuple[str, ...] = (), submodules: dict[str, str] | None = None) -> None:
        text = module_text if module_text is not None else f"VERSION = {version!r}\n"
        self.add_file(name, write_wheel(self.folder, name, version, text, requires, submodules), uploaded)

    def add_sdist(self, name: str, version: str, uploaded: str, setup_py: str) -> None:
        """A source release ``NAME-VERSION.tar.gz`` whose build runs ``setup_py``."""
        base = f"{name}-{version}"
        archive = self.folder / f"{base}.tar.gz"
        self.folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            for member, text in ((f"{base}/setup.py", setup_py),
                                 (f"{base}/PKG-INFO", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")):
                data = text.encode()
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        self.add_file(name, archive, uploaded)

    def add_file(self, name: str, path: Path, uploaded: str) -> None:
        """Serve an existing file (a wheel or a source release) as uploaded at ``uploaded``."""
        if path.parent != self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = Path(shutil.copy(path, self.folder))
        self.files.setdefault(name.replace("_", "-").lower(), []).append((path, uploaded))

    def page(self, project: str) -> bytes | None:
        files = self.files.get(project.replace("_", "-").lower())
        if files is None:
            return None
        entries = [{"filename": wheel.name, "url": f"/files/{wheel.name}",
                    "hashes": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}, "upload-time": uploaded}
                   for wheel, uploaded in files]
        return json.dumps({"meta": {"api-version": "1.1"}, "name": project, "files": entries}).encode()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
