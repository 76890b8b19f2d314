"""The sandbox every third-party process runs in (smoke tests, static checks, steps, installers).

With bubblewrap (``bwrap``) a command gets its own PID namespace (when its first process ends
or is killed, every descendant dies, whatever session it made), dies with awrepro
(``--die-with-parent``), sees the filesystem read-only except the folders it may write and a
private /tmp, no capabilities, the caller's home hidden or its credential files masked, and
no network when asked. Without bwrap (missing, or refused by the kernel) awrepro says once
what is off and falls back to a child subreaper: every process a command leaves behind carries
a tag in its environment and is killed when the command ends, or by the next run when awrepro
itself was killed.

``wrap`` turns a command and a ``Confinement`` into the argv to run; ``current_mode`` tells
which mode applies (``awrepro show`` and ``doctor`` print ``describe_mode()``).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from awrepro import console

ENV_MODE = "AWREPRO_SANDBOX"  # "auto" (default) or "fallback": never use bwrap
TAG_VARIABLE = "AWREPRO_SANDBOX_TAG"
BWRAP = "bubblewrap"
FALLBACK = "fallback"
FALLBACK_OFF = "no PID namespace, no read-only filesystem, no network cut, no masking of credential files"

# Files and folders in a home that hold credentials; hidden from installers, which need the rest of it.
CREDENTIALS = (".netrc", ".ssh", ".aws", ".azure", ".config/gh", ".config/gcloud", ".config/hub", ".git-credentials",
               ".pypirc", ".docker", ".kube", ".gnupg", ".oci", ".config/doctl", ".terraform.d", ".npmrc",
               ".config/git/credentials", ".local/share/keyrings", ".password-store", ".vault-token", ".boto",
               ".s3cfg", ".huggingface", ".cache/huggingface/token", ".config/rclone")


@dataclass(frozen=True)
class Confinement:
    """What one third-party command may touch.

    ``writable``: folders it may write (everything else is read-only). ``readable``: folders it
    must see even where the sandbox hides things (a private /tmp, the caller's home).
    ``scratch_home``: the HOME it gets, its own; None keeps the caller's HOME (installers read
    their configuration there), with the credential files masked. ``network``: False cuts it.
    """

    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    scratch_home: Path | None = None
    network: bool = True
    extra: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Mode:
    name: str  # BWRAP or FALLBACK
    reason: str  # why this mode: the bwrap found, or why it cannot be used

    @property
    def contained(self) -> bool:
        return self.name == BWRAP


@functools.lru_cache(maxsize=1)
def current_mode() -> Mode:
    """Which sandbox applies on this machine, probed once per process (one short bwrap run)."""
    if os.environ.get(ENV_MODE, "auto") == FALLBACK:
        return Mode(FALLBACK, f"{ENV_MODE}=fallback")
    found = shutil.which("bwrap")
    if found is None:
        return Mode(FALLBACK, "bwrap not found (install bubblewrap)")
    try:
        probe = subprocess.run([found, *_BASE_OPTIONS, "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=30, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Mode(FALLBACK, f"bwrap cannot run: {exc}")
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()
        return Mode(FALLBACK, f"bwrap refused: {reason[-1] if reason else f'exit code {probe.returncode}'}")
    return Mode(BWRAP, found)


def describe_mode() -> str:
    """One line for ``show`` and ``doctor``: which sandbox third-party code runs in here."""
    mode = current_mode()
    if mode.contained:
        return (f"bubblewrap ({mode.reason}): own PID namespace, read-only filesystem, scratch HOME, "
                "network cut on request")
    return f"fallback ({mode.reason}): child subreaper, scratch HOME, path checks; off: {FALLBACK_OFF}"


_warned = threading.Event()


def warn_once() -> None:
    """Say once per run which protections are off when bwrap cannot be used."""
    mode = current_mode()
    if mode.contained or _warned.is_set():
        return
    _warned.set()
    console.warning(f"sandbox: {mode.reason}; third-party code runs with {FALLBACK_OFF} "
                 "(a child subreaper, a scratch HOME and path checks still apply)")


_BASE_OPTIONS = ("--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL")


def wrap(cmd: Sequence[str], confinement: Confinement, cwd: Path | None) -> list[str]:
    """The argv that runs ``cmd`` confined (with bwrap), or ``cmd`` itself in the fallback mode."""
    mode = current_mode()
    if not mode.contained:
        return list(cmd)
    args = [mode.reason, *_BASE_OPTIONS]
    if not confinement.network:
        args.append("--unshare-net")
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for home in _caller_homes():
        if confinement.scratch_home is not None:
            args += ["--tmpfs", str(home)]  # nothing of the caller's home, unless named below
        else:
            args += _masks(home)
    for path in _existing([*confinement.readable, *_program_homes(cmd[0])]):
        args += ["--ro-bind", str(path), str(path)]
    for path in _existing(confinement.writable):
        args += ["--bind", str(path), str(path)]
    if cwd is not None:
        args += ["--chdir", str(cwd)]
    return [*args, *confinement.extra, "--", *cmd]


def _program_homes(program: str) -> list[Path]:
    """The installation a program comes from, as named and as resolved, which /tmp or a hidden home
    could otherwise hide: a uv binary in a virtual environment under /tmp, an interpreter under ~/.pyenv."""
    found = shutil.which(program)
    if found is None:
        return []
    homes = {Path(found).absolute().parent.parent, Path(os.path.realpath(found)).parent.parent}
    return [home for home in homes if home != Path("/")]


def _caller_homes() -> list[Path]:
    """The caller's home folders (``$HOME`` and the account's), never ``/`` itself."""
    import pwd

    homes = {os.environ.get("HOME", "")}
    try:
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    found = []
    for home in sorted(h for h in homes if h):
        path = Path(home).resolve()
        if path != Path("/") and path.is_dir():
            found.append(path)
    return found


def _masks(home: Path) -> list[str]:
    args: list[str] = []
    for name in CREDENTIALS:
        target = home / name
        if target.is_symlink() or not target.exists():
            continue
        args += ["--tmpfs", str(target)] if target.is_dir() else ["--ro-bind", "/dev/null", str(target)]
    return args


def _existing(paths: Iterable[Path]) -> list[Path]:
    """Resolved folders and files, each once, parents before children (bwrap applies binds in order).

    Nothing under /dev or /proc (the sandbox has its own; a bind would make /dev/null unusable)."""
    found = {Path(os.path.realpath(p)) for p in paths}
    kept = [p for p in found if (p.is_dir() or p.is_file()) and p.parts[1:2] not in (("dev",), ("proc",))]
    return sorted(kept, key=lambda p: len(p.parts))


# ---------------------------------------------------------------- the fallback: subreaper and sweeps

_tag_counter = iter(range(1, 1 << 62))
_tag_lock = threading.Lock()


def new_tag() -> str:
    """A tag for one command's processes: OWNER_PID.OWNER_START.N (the start time tells a reused pid apart)."""
    with _tag_lock:
        number = next(_tag_counter)
    return f"{os.getpid()}.{_start_time(os.getpid())}.{number}"


@functools.lru_cache(maxsize=1)
def become_subreaper() -> bool:
    """Orphans of our children come to us, not to init, so a sweep can find and reap them.

    Also ends what an earlier awrepro, killed before it could sweep, left running."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        ok = False
    sweep(lambda tag: not _owner_alive(tag))
    return ok


def sweep_tag(tag: str) -> None:
    """Kill every process that carries ``tag`` (one command's leftovers), and reap those that are ours."""
    sweep(lambda found: found == tag)


def sweep(matches: Callable[[str], bool]) -> None:
    """SIGKILL processes whose tag ``matches`` until none is left (bounded), reaping our own children."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        victims = [pid for pid, tag in _tagged_processes() if matches(tag)]
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in victims:
            _reap(pid)
        time.sleep(0.02)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it


def _tagged_processes() -> list[tuple[int, str]]:
    prefix = f"{TAG_VARIABLE}=".encode()
    found = []
    me = os.getpid()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(proc.name)
            if pid == me or _is_zombie(proc):
                continue
            for item in (proc / "environ").read_bytes().split(b"\0"):
                if item.startswith(prefix):
                    found.append((pid, item[len(prefix):].decode(errors="replace")))
                    break
        except (OSError, ValueError):
            continue
    return found


def _is_zombie(proc: Path) -> bool:
    stat = (proc / "stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def _owner_alive(tag: str) -> bool:
    owner, _, rest = tag.partition(".")
    start = rest.partition(".")[0]
    return owner.isdigit() and _start_time(int(owner)) == start and start != "0"
