"""The one place awrepro starts other programs.

Every child gets a session of its own, so on a timeout or Ctrl-C the whole process group
gets SIGTERM, a grace period, then SIGKILL. Output goes through a pipe to its log and to
memory (``_Output``): what a child said survives a log that cannot be written, and a
grandchild that detached with ``setsid`` and kept the pipe open cannot hang awrepro.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, TypeVar

from awrepro import cancel, console

if TYPE_CHECKING:
    from awrepro.sandbox import Confinement

T = TypeVar("T")
GRACE_SECONDS = 3.0
_TAIL_BYTES = 64 * 1024

# Variables a third-party child may see: nothing that carries a secret.
BASE_ALLOWLIST = ("PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL", "SSL_CERT_FILE", "SSL_CERT_DIR")
BASE_PREFIXES = ("LC_",)
# Installers also need their own settings and proxies (the user's pip config names the wheel folder).
INSTALL_ALLOWLIST = BASE_ALLOWLIST + ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "PIP_CONFIG_FILE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
INSTALL_PREFIXES = BASE_PREFIXES + ("PIP_", "UV_")


_children: set[subprocess.Popen[bytes]] = set()
_children_lock = threading.Lock()


def cancel_all() -> None:
    """Ctrl-C in a parallel run: start nothing new, and end every running child's process group."""
    cancel.requested.set()
    with _children_lock:
        children = list(_children)
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Completed:
    """How a child ended. ``returncode`` is None when it was killed for a timeout."""

    returncode: int | None
    duration: float
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def scrubbed_environ(
    *,
    allow: Sequence[str] = BASE_ALLOWLIST,
    prefixes: Sequence[str] = BASE_PREFIXES,
    extra: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment built from an allowlist of the caller's, plus ``extra``.

    A variable let in by a prefix (``PIP_*``, ``UV_*``) still stays out when its name says it
    is a secret: installers run the build scripts of third-party packages.
    """
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items()
           if k in allow or (k.startswith(tuple(prefixes)) and not _SECRET_NAME.search(k))}
    env.update(extra or {})
    return env


_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|PUBLISH|KEYRING|CREDENTIAL|AUTH", re.IGNORECASE)


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    log_path: Path | None = None,
    input_text: str | None = None,
    whole_output: bool = False,
    sandbox: Confinement | None = None,
) -> Completed:
    """Run ``cmd`` to completion (or timeout) and return its exit code, duration and output tail.

    With ``log_path`` the output is appended there as it comes (and kept, in memory too).
    ``input_text`` is written to the child's stdin; ``whole_output`` returns all of the output,
    not only its tail. A missing program or unusable cwd is exit code 127 with the reason as
    output, never an exception. With ``sandbox`` the command is third-party code: it runs
    confined (``sandbox.py``), and whatever it leaves running is ended with it.
    """
    if cancel.requested.is_set():
        raise KeyboardInterrupt
    console.debug(f"$ {' '.join(cmd)}")  # as the registry wrote it; -vv adds the sandbox's options
    if sandbox is not None:
        with _confined(cmd, sandbox, cwd, env) as (argv, environ):
            return _run(argv, cwd, environ, timeout, log_path, input_text, whole_output)
    return _run(cmd, cwd, env, timeout, log_path, input_text, whole_output)


@contextmanager
def _confined(cmd: Sequence[str], confinement: Confinement, cwd: Path | None,
              env: Mapping[str, str] | None) -> Iterator[tuple[list[str], dict[str, str]]]:
    from awrepro import sandbox

    environ = dict(os.environ if env is None else env)
    if confinement.scratch_home is not None:
        confinement.scratch_home.mkdir(parents=True, exist_ok=True)
        environ["HOME"] = str(confinement.scratch_home)
    if sandbox.current_mode().contained:
        yield sandbox.wrap(cmd, confinement, cwd), environ
        return
    sandbox.warn_once()
    sandbox.become_subreaper()
    tag = sandbox.new_tag()
    environ[sandbox.TAG_VARIABLE] = tag
    try:
        yield list(cmd), environ
    finally:
        sandbox.sweep_tag(tag)  # what the command left running, whatever session it made
        _reap_orphans()


def _reap_orphans() -> None:
    """As a subreaper we inherit orphans that end on their own: reap them, never a child that
    a ``Popen`` of ours still waits for (its exit code would be lost)."""
    with _children_lock:
        ours = {child.pid for child in _children}
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if fields[0] == "Z" and fields[1] == me and pid not in ours:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _run(cmd: Sequence[str], cwd: Path | None, env: Mapping[str, str] | None, timeout: float | None,
         log_path: Path | None, input_text: str | None, whole_output: bool) -> Completed:
    started = time.monotonic()
    output = _Output(_open_log(log_path), None if whole_output else _TAIL_BYTES)
    read_end, write_end = os.pipe()
    try:
        try:
            with _children_lock:  # registered at once: a reap of orphans must never take it
                child = subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=dict(env) if env is not None else None,
                    stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
                    stdout=write_end,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                _children.add(child)
        except OSError as exc:
            os.close(read_end)
            missing_cwd = cwd is not None and not Path(cwd).is_dir()
            message = f"cannot run in {cwd}: no such folder" if missing_cwd else f"cannot run {_describe(cmd)}: {exc.strerror or exc}"
            output.keep((message + "\n").encode())
            return Completed(127, time.monotonic() - started, message)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the child's copy is the only one now: its end is our EOF
        output.start(read_end)
        try:
            if cancel.requested.is_set():  # cancel_all ran between our check above and the start: it missed this child
                kill_group(child)
                raise KeyboardInterrupt
            if input_text is not None:
                _feed(child, input_text)
            timed_out = _wait(child, timeout)
        finally:
            with _children_lock:
                _children.discard(child)
            output.finish()
        if cancel.requested.is_set():
            raise KeyboardInterrupt
        return Completed(None if timed_out else child.returncode, time.monotonic() - started, output.text(),
                         timed_out=timed_out)
    finally:
        output.close()


def _open_log(log_path: Path | None) -> IO[bytes] | None:
    """The log to append to; None when it cannot be written (a full disk): the output is kept anyway."""
    if log_path is None:
        return None
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return open(log_path, "ab")  # noqa: SIM115 (closed by _Output.close)
    except OSError:
        return None


class _Output:
    """A child's output, read from a pipe by a thread: appended to its log as it comes (while the
    log can be written) and kept in memory (its last ``limit`` bytes), so what the child said
    survives a log on a full disk. Reading stops at EOF, or ``DRAIN_SECONDS`` after the child
    ended: a grandchild that detached and kept the pipe open cannot hang awrepro."""

    DRAIN_SECONDS = 2.0

    def __init__(self, log: IO[bytes] | None, limit: int | None) -> None:
        self.log = log
        self.limit = limit
        self.kept = bytearray()
        self.deadline: float | None = None
        self.thread: threading.Thread | None = None

    def start(self, fd: int) -> None:
        self.thread = threading.Thread(target=self._copy, args=(fd,), daemon=True)
        self.thread.start()

    def _copy(self, fd: int) -> None:
        import select

        try:
            while self.deadline is None or time.monotonic() < self.deadline:
                if not select.select([fd], [], [], 0.1)[0]:
                    continue
                data = os.read(fd, 64 * 1024)
                if not data:
                    return
                self.keep(data)
        finally:
            os.close(fd)

    def keep(self, data: bytes) -> None:
        self.kept += data
        if self.limit is not None and len(self.kept) > 2 * self.limit:
            del self.kept[:-self.limit]
        if self.log is not None:
            try:
                self.log.write(data)
                self.log.flush()
            except OSError:  # the disk is full: the log stops here, the memory goes on
                self._drop_log()

    def finish(self) -> None:
        """The child has ended: read what is left, for a bounded while."""
        self.deadline = time.monotonic() + self.DRAIN_SECONDS
        if self.thread is not None:
            self.thread.join()

    def text(self) -> str:
        data = self.kept if self.limit is None else self.kept[-self.limit:]
        return data.decode("utf-8", errors="replace")

    def close(self) -> None:
        self._drop_log()

    def _drop_log(self) -> None:
        log, self.log = self.log, None
        if log is not None:
            try:
                log.close()
            except OSError:  # what was still buffered found no room either
                pass


def _wait(child: subprocess.Popen[bytes], timeout: float | None) -> bool:
    """Wait for the child; True if it had to be killed for the timeout. Ctrl-C kills it too."""
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(child)
        return True
    except BaseException:
        kill_group(child)
        raise
    # The child is gone; anything it left running in its group goes with it.
    _signal_group(child.pid, signal.SIGKILL)
    return False


def kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, wait a grace period, then SIGKILL whatever is left."""
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(child.pid, signal.SIGKILL)
    child.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _feed(child: subprocess.Popen[bytes], text: str) -> None:
    """Output goes to a file, so writing all the input first cannot deadlock."""
    assert child.stdin is not None
    try:
        child.stdin.write(text.encode())
        child.stdin.close()
    except BrokenPipeError:  # the child stopped reading; its exit code tells the rest
        pass


def _describe(cmd: Sequence[str]) -> str:
    return cmd[0] if cmd else "(nothing)"


def last_error_line(output: str) -> str:
    """The line of the output most likely to say what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    markers = ("error", "Error", "ERROR", "fatal:", "Traceback", "No module named", "not found", "FAILED")
    for line in reversed(lines):
        if any(marker in line for marker in markers) and not line.startswith("Traceback"):
            return line[:300]
    return lines[-1][:300] if lines else ""


def run_interactive(cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> int:
    """Run ``cmd`` attached to the terminal and return its exit code.

    Output streams live. Ctrl-C goes to the command (it shares the terminal's process group)
    and is its to handle: awrepro ignores it meanwhile, so a REPL survives it and a training
    script can save its state before it exits.
    """
    try:
        child = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env))
    except FileNotFoundError:
        return 127
    except OSError:  # found but cannot be executed: no permission, not a program (as a shell says: 126)
        return 126
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def map_interruptibly(work: Callable[[T], None], items: Sequence[T], jobs: int) -> None:
    """``work`` on each item, ``jobs`` at a time. Ctrl-C or SIGTERM ends every running child,
    starts nothing new, and is raised here once the workers have stopped."""
    with interruptible():
        if len(items) == 1:
            work(items[0])  # no thread for the common single-entry case
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            list(pool.map(work, items))
        except KeyboardInterrupt:
            cancel_all()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)


@contextmanager
def interruptible() -> Iterator[None]:
    """For a command that runs children in parallel: SIGTERM (a cancelled CI job) acts like Ctrl-C.

    The children live in sessions of their own, so neither signal reaches them; the command
    catches the KeyboardInterrupt and calls ``cancel_all``. Afterwards new children may start again.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # a worker: the main thread handles signals and cancelling
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        cancel.requested.clear()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
