"""Real git repositories for tests, made with the git CLI, and a real ``git daemon`` to serve them."""

from __future__ import annotations

import socket
import subprocess
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
        """Write ``files`` (None deletes one) and commit; the bare copy follows. Returns the sha."""
        work = self.root / "work" / name
        for rel, content in files.items():
            path = work / rel
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """``git daemon`` serving a folder of bare repositories on 127.0.0.1."""

    def __init__(self, base: Path, *extra_args: str) -> None:
        self.base = base
        self.extra_args = extra_args
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.base}",
             "--listen=127.0.0.1", f"--port={self.port}", *self.extra_args, str(self.base)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
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
