"""Real git repositories for tests, made with the git CLI, and a real ``git daemon`` to serve them."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


class RepoFactory:
    """Work trees under ``root/work``, bare copies (what the daemon serves) under ``root/bare``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare = root / "bare"
        self.bare.mkdir(parents=True, exist_ok=True)

    def create(self, name: str, files: dict[str, str], message: str = "initial") -> str:
        """A new repository with one commit holding ``files``; returns the commit's sha."""
        work = self.root / "work" / name
        work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=work)
        return self.commit(name, files, message)

    def commit(self, name: str, files: dict[str, str], message: str = "change") -> str:
        """Write ``files`` (bytes as they are, None deletes one) and commit; the bare copy follows. Returns the sha."""
        work = self.root / "work" / name
        for rel, content in files.items():
            path = work / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        git("add", "-A", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=work)
        self.publish(name)
        return git("rev-parse", "HEAD", cwd=work)

    def publish(self, name: str, force: bool = False) -> None:
        work = self.root / "work" / name
        bare = self.bare / f"{name}.git"
        if not bare.exists():
            git("init", "-q", "--bare", str(bare))
        git("push", "-q", *(["--force"] if force else []), str(bare), "HEAD:refs/heads/main", cwd=work)

    def work_tree(self, name: str) -> Path:
        return self.root / "work" / name

    def push_ref(self, name: str, rev: str, ref: str) -> None:
        """Publish ``rev`` of the work tree under ``ref`` (e.g. ``refs/pull/1/head``) in the bare copy."""
        git("push", "-q", "--force", str(self.bare / f"{name}.git"), f"{rev}:{ref}", cwd=self.work_tree(name))

    def force_back(self, name: str, rev: str) -> None:
        """Reset the work tree to ``rev`` and force-push it; then prune the bare copy so what was
        dropped is really gone (protocol v2 serves unreachable objects that are still stored)."""
        git("reset", "-q", "--hard", rev, cwd=self.work_tree(name))
        self.publish(name, force=True)
        bare = self.bare / f"{name}.git"
        git("reflog", "expire", "--expire=now", "--all", cwd=bare)
        git("gc", "-q", "--prune=now", cwd=bare)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """``git daemon`` serving a folder of bare repositories on 127.0.0.1."""

    def __init__(self, base: Path, *extra_args: str, log: Path | None = None, config: tuple[str, ...] = ()) -> None:
        self.base = base
        self.extra_args = extra_args
        self.config = config  # git -c settings for the daemon and the upload-pack it runs
        self.log = log  # with a log file, the daemon runs --verbose and writes every request there
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> None:
        self.port = free_port()
        verbose = ["--verbose"] if self.log else []
        with open(self.log or os.devnull, "ab") as stderr:
            self.process = subprocess.Popen(
                ["git", *(arg for setting in self.config for arg in ("-c", setting)), "daemon", "--reuseaddr", "--export-all", f"--base-path={self.base}", *verbose,
                 "--listen=127.0.0.1", f"--port={self.port}", *self.extra_args, str(self.base)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 60  # a loaded machine starts it slowly
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def requests(self, name: str) -> int:
        """How many fetches of ``name`` the daemon served (needs ``log``)."""
        assert self.log is not None, "start the daemon with log= to count requests"
        text = self.log.read_text() if self.log.exists() else ""
        return text.count(f"Request upload-pack for '/{name}.git'")


# ---------------------------------------------------------------- registries and more servers for fetch tests


def demo_registry(code: str, *, env: str = "") -> str:
    """A registry with one paper ``demo`` whose code table is ``code`` (TOML lines) and optional env lines."""
    env_table = f"\n[papers.demo.impl.main.env]\n{env}\n" if env else ""
    return f'''\
format = 1

[papers.demo]
title = "Demo: A Paper for Tests"
venue = "Tests"
year = 2024
section = "Tests"

[papers.demo.impl.main.code]
{code}
{env_table}
[papers.demo.impl.main.smoke]
command = "true"
'''


def git_code(url: str, commit: str) -> str:
    return f'git = "{url}"\ncommit = "{commit}"'


class HttpServer:
    """``http.server.ThreadingHTTPServer`` on 127.0.0.1 serving ``folder``, in a thread."""

    def __init__(self, folder: Path) -> None:
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.folder = folder
        handler = functools.partial(Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


class SlowProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port`` that sends the server's bytes slowly.

    ``slow`` sleeps between chunks (a transfer that takes seconds, so a test can kill the
    client mid-way); ``drop()`` cuts every open connection and makes the proxy fast from then on.
    """

    CHUNK = 16 * 1024

    def __init__(self, target_port: int, delay: float = 0.02) -> None:
        self.target_port = target_port
        self.delay = delay
        self.sent = 0  # bytes forwarded from the server to clients
        self.errors: list[OSError] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError as exc:
                self.errors.append(exc)
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(self.CHUNK)
                if not data:
                    break
                sink.sendall(data)
                if downstream:
                    self.sent += len(data)
                    if self.delay:
                        time.sleep(self.delay)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop(self) -> None:
        self.delay = 0
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        except OSError:
            pass
        self._accepting.join(timeout=10)
        self._listener.close()
        self.drop()


def processes_in(folder: Path) -> list[int]:
    """Pids of processes whose working directory is inside ``folder`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(f"{folder}/"):
            found.append(int(entry.name))
    return found


# ---------------------------------------------------------------- reading what fetch did

STRAY_GIT = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")


def write_registry(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "registry.toml"
    path.write_text(text)
    return path


def git_out(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """``git ARGS`` as a user would run it, immune to a GIT_DIR a test put in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in STRAY_GIT}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def head(tree: Path) -> str:
    return git_out("rev-parse", "HEAD", cwd=tree)


def result_line(out: str, entry: str = "demo") -> str:
    """The line fetch printed for ``entry``: ``ID  STATE  PATH``."""
    lines = [line for line in out.splitlines() if line.startswith(f"{entry}  ")]
    assert len(lines) == 1, out
    return lines[0]


def printed_path(out: str, entry: str = "demo") -> Path:
    return Path(result_line(out, entry).split("  ")[-1])


def state(out: str, entry: str = "demo") -> str:
    """``fetched`` or ``cached``, as fetch printed it."""
    word = result_line(out, entry).split("  ")[1]
    return "fetched" if word.startswith("fetched in ") else word


def tmp_leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".tmp-*")) if folder.exists() else []


def checkout_dirs(cache: Path) -> list[Path]:
    folder = cache / "checkouts"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def mirror_of(cache: Path, name: str) -> Path:
    found = sorted((cache / "repos").rglob(f"{name}.git"))
    assert len(found) == 1, found
    return found[0]


def has_object(repo: Path, sha: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", sha], cwd=repo, capture_output=True).returncode == 0


def fetch_error(out: str, entry: str = "demo") -> str:
    """The one-line message of fetch's ``ID  fetch-error  MESSAGE`` row."""
    parts = result_line(out, entry).split("  ", 2)
    assert parts[1] == "fetch-error", out
    return parts[2]
