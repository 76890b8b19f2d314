"""Ctrl-C in every command that starts children, and edge cases of ids, paths and options."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.gitfixtures import demo_registry, processes_in, write_registry
from tests.processes import alive, wait_until


def _awrepro(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "awrepro", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _silent_server() -> tuple[socket.socket, int, list[socket.socket]]:
    """A TCP server that accepts connections and never answers: a git fetch from it hangs.
    The list holds the connections accepted so far (a git that connected is a git that runs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1], held


def _opened_by(pid: int, path: Path) -> bool:
    """The process has ``path`` open (read from /proc): it got as far as the code that opens it."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def test_ctrl_c_ends_a_parallel_fetch_and_its_git_children(tmp_path: Path, cache_dir: Path) -> None:
    server, port, connections = _silent_server()
    try:
        text = "format = 1\n" + "".join(
            demo_registry(f'git = "git://127.0.0.1:{port}/hang-{n}.git"\ncommit = "{"ab" * 20}"')
            .replace("format = 1\n", "").replace("papers.demo", f"papers.p{n}") for n in range(3))
        registry = write_registry(tmp_path / "reg", text)
        child = _awrepro("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "--all", "-j", "2",
                         cwd=tmp_path)
        assert wait_until(lambda: len(connections) >= 2), "git never connected"  # -j 2: two gits
        gits = processes_in(cache_dir)  # git runs inside the cache's mirrors
        assert gits
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 130, out + err
        assert wait_until(lambda: not any(alive(pid) for pid in gits)), gits
        assert processes_in(cache_dir) == []
    finally:
        server.close()


def test_ctrl_c_in_run_belongs_to_the_command(repos, git_daemon, tmp_path: Path, cache_dir: Path,
                                              monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    # The command says when it is ready for Ctrl-C (its handler is set up) by writing a file.
    script = ("import pathlib, sys, time\n"
              "try:\n    pathlib.Path(sys.argv[2]).write_text('ready')\n    time.sleep(300)\n"
              "except KeyboardInterrupt:\n    time.sleep(0.5)\n    pathlib.Path(sys.argv[1]).write_text('saved')\n")
    pin = repos.create("demo", {"child.py": script})
    registry = write_registry(tmp_path / "reg", demo_registry(f'git = "{git_daemon.url("demo")}"\ncommit = "{pin}"'))
    saved, ready = tmp_path / "saved", tmp_path / "ready"
    setup = _awrepro("--registry", str(registry), "--cache-dir", str(cache_dir), "setup", "demo", cwd=tmp_path)
    assert setup.wait(timeout=120) == 0, setup.communicate()
    child = _awrepro("--registry", str(registry), "--cache-dir", str(cache_dir), "run", "demo", "--",
                     "python", "child.py", str(saved), str(ready), cwd=tmp_path)
    try:
        assert wait_until(ready.exists), child.communicate(timeout=60)
        os.killpg(child.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 0, out + err  # the command handled Ctrl-C and exited 0: so does awrepro
    assert saved.read_text() == "saved"


def test_one_entry_named_twice_runs_once(cli, repos, git_daemon, tmp_path: Path, cache_dir: Path) -> None:
    pin = repos.create("demo", {"a.py": "A = 1\n"})
    registry = write_registry(tmp_path / "reg", demo_registry(f'git = "{git_daemon.url("demo")}"\ncommit = "{pin}"'))
    result = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo", "demo/main", "demo/*",
                 "--dest", str(tmp_path / "copy"))
    assert result.code == 0, result.out + result.err
    assert [line.split("  ")[0] for line in result.out.splitlines()] == ["demo"]
    assert (tmp_path / "copy" / "a.py").is_file()


def test_a_url_ending_in_dots_stays_in_its_own_folder(cli, repos, tmp_path: Path, cache_dir: Path) -> None:
    pin = repos.create("demo", {"a.py": "A = 1\n"})
    url = f"file://{repos.bare / 'demo.git'}/objects/.."
    registry = write_registry(tmp_path / "reg", demo_registry(f'git = "{url}"\ncommit = "{pin}"'))
    result = cli("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo", "--allow-file")
    assert result.code == 0, result.out + result.err
    where = Path(result.out.splitlines()[0].split("  ")[-1])
    assert where.name == "code" and where.parent.parent == cache_dir / "checkouts"
    assert not (cache_dir / "checkouts" / "a.py").exists()


def test_bad_report_paths_and_cache_folder_are_refused_before_anything_runs(cli, tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "reg", demo_registry('git = "https://example.org/x"\ncommit = "' + "ab" * 20 + '"'))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "cache"), "check", "--all",
                 "--json", str(folder))
    assert (result.code, result.err) == (2, f"error: --json {folder}: is a folder; give a file name\n")
    assert not (tmp_path / "cache" / "results.db").exists() and not (tmp_path / "cache" / "logs").exists()
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    result = cli("--registry", str(registry), "--cache-dir", str(a_file), "check", "--all")
    assert (result.code, result.err) == (2, f"error: cache folder {a_file} is a file; give another --cache-dir\n")
    result = cli("--registry", str(registry), "--cache-dir", str(tmp_path / "c2"), "history", "demo", "--db",
                 str(registry))
    assert result.code == 2
    assert result.err.startswith(f"error: cannot use the results database {registry}: ")


def test_ctrl_c_while_waiting_for_another_process_lock(repos, git_daemon, tmp_path: Path, cache_dir: Path) -> None:
    from awrepro import locks, sources
    from awrepro.cache import Cache

    pin = repos.create("demo", {"a.py": "A = 1\n"})
    url = git_daemon.url("demo")
    registry = write_registry(tmp_path / "reg", demo_registry(f'git = "{url}"\ncommit = "{pin}"'))
    mirror = sources.mirror_path(Cache(cache_dir), url)
    lock = mirror.with_name(mirror.name + ".lock")
    with locks.locked(lock):  # as another awrepro fetching it would
        child = _awrepro("--registry", str(registry), "--cache-dir", str(cache_dir), "fetch", "demo", cwd=tmp_path)
        assert wait_until(lambda: _opened_by(child.pid, lock)), child.communicate(timeout=60)
        assert child.poll() is None  # waiting for the lock we hold
        os.kill(child.pid, signal.SIGINT)
        # It polls the lock and gives up on Ctrl-C: it ends while we still hold the lock.
        out, err = child.communicate(timeout=120)
        assert child.returncode == 130, out + err


def test_gc_keeps_the_environment_of_an_archive_entry(cli, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    import tarfile

    from tests.gitfixtures import HttpServer

    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    served = tmp_path / "www"
    served.mkdir()
    with tarfile.open(served / "proj.tar.gz", "w:gz") as tar:
        source = tmp_path / "proj"
        source.mkdir()
        (source / "hello.py").write_text("print('OK')\n")
        tar.add(source, arcname="proj")
    import hashlib

    sha = hashlib.sha256((served / "proj.tar.gz").read_bytes()).hexdigest()
    server = HttpServer(served)
    server.start()
    try:
        text = demo_registry(f'archive = "{server.url("proj.tar.gz")}"\nsha256 = "{sha}"').replace(
            'command = "true"', 'command = "python hello.py"')
        registry = write_registry(tmp_path / "reg", text)
        args = ("--registry", str(registry), "--cache-dir", str(cache_dir))
        assert cli(*args, "check", "demo").code == 0
        gc = cli(*args, "gc", "--dry-run")
        assert gc.code == 0
        assert "envs" not in gc.out and "archives" not in gc.out, gc.out
    finally:
        server.stop()
