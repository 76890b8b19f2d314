"""One entry, end to end: fetch → setup → smoke, each stage timed and logged, ending in a result.

A failing smoke test is data (a ``Result``), not an exception. Only a fault of awrepro itself
becomes status ``error``, and even that is reported for the entry, never stopping the run.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from awrepro import envs, fetching, interpreters, process, sources
from awrepro.cache import Cache
from awrepro.errors import EntrySkipped, EnvSetupError, FetchError, disk_full
from awrepro.model import Implementation
from awrepro.paths import inside
from awrepro.registry import Entry, LoadedRegistry
from awrepro.results import Result, StageResult
from awrepro.sanitize import printable


@dataclass(frozen=True)
class Options:
    fetch: sources.FetchOptions = field(default_factory=sources.FetchOptions)
    backend: str | None = None
    gpu: bool = False
    timeout: int | None = None
    executor: str = "local"  # where smoke stages run: see executors/
    network: bool = True  # False: every smoke test runs with the network cut (check --no-network)


def prepare_env(cache: Cache, impl: Implementation, checkout: sources.Checkout,
                options: Options, log_path: Path | None) -> envs.Environment:
    the_plan = envs.plan(impl, checkout.root, checkout.key, options.backend, tree=checkout.tree)
    return envs.ensure(cache, the_plan, log_path)


@functools.lru_cache(maxsize=1)
def gpu_present() -> bool:
    """Asked once per run, not once per entry."""
    nvidia = shutil.which("nvidia-smi")
    if not nvidia:
        return False
    return process.run([nvidia, "-L"], timeout=30).ok


class Mode:
    SMOKE = "smoke"
    STATIC = "static"


def choose_mode(impl: Implementation, options: Options, has_gpu: Callable[[], bool]) -> str:
    """Run the smoke test where it can run here, else the static check; else the entry is skipped."""
    smoke = impl.smoke
    if smoke.runnable and (not smoke.gpu or (options.gpu and has_gpu())):
        return Mode.SMOKE
    if smoke.static is not None:
        return Mode.STATIC
    raise EntrySkipped("needs a GPU" + ("" if options.gpu else " (use --gpu on a machine with one)"))


def entry_mode(entry: Entry, options: Options) -> str:
    """What a check of this entry would run here (smoke or static); EntrySkipped says why nothing."""
    impl = entry.impl
    if impl is None or impl.draft:
        raise EntrySkipped(entry.why_not_checked())
    if impl.code.pin is None:
        raise EntrySkipped("unpinned archive: no sha256 is known, so its content cannot be trusted")
    # A GPU for a Slurm job is the node's (--gres=gpu:1), not this machine's.
    return choose_mode(impl, options, gpu_present if options.executor == "local" else lambda: True)


def check_entry(entry: Entry, registry: LoadedRegistry, cache: Cache, options: Options, log_dir: Path,
                on_stage: Callable[[str], None] = lambda _: None) -> Result:
    """Fetch, set up and smoke-test one entry, here; always returns a result."""
    tracker = _Tracker(entry, log_dir, time.monotonic())

    def everything() -> Result:
        job = _prepare(entry, registry, cache, options, tracker, on_stage)
        on_stage("static" if tracker.level == Mode.STATIC else "smoke")
        with tracker.stage("smoke"):
            outcome = run_smoke_job(job)
        return tracker.finish(*outcome, failed_stage=None if outcome[0] == "passed" else "smoke")

    return _guarded(tracker, everything)


@dataclass(frozen=True)
class Prepared:
    """An entry fetched and set up whose smoke stage runs elsewhere (an executor's job), as plain data."""

    entry_id: str
    full_id: str
    level: str | None
    commit: str | None
    env_key: str | None
    stages: tuple[StageResult, ...]
    elapsed: float  # seconds spent preparing
    folder: str  # the entry's log folder
    job: SmokeJob

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prepared:
        fields = dict(data)
        fields["stages"] = tuple(StageResult(**stage) for stage in fields["stages"])
        fields["job"] = SmokeJob(**fields["job"])
        return cls(**fields)

    def finish(self, status: str, note: str, smoke_duration: float) -> Result:
        """The entry's result once its smoke stage ended (or its job was lost) with ``status``."""
        passed = status == "passed"
        smoke = StageResult("smoke", "ok" if passed else status, smoke_duration, self.job.log_path)
        return Result(entry_id=self.entry_id, full_id=self.full_id, status=status, level=self.level,
                      failed_stage=None if passed else "smoke", duration=self.elapsed + smoke_duration, note=note,
                      commit=self.commit, env_key=self.env_key, log_path=None if passed else self.job.log_path,
                      stages=(*self.stages, smoke))


def prepare_entry(entry: Entry, registry: LoadedRegistry, cache: Cache, options: Options, log_dir: Path,
                  on_stage: Callable[[str], None] = lambda _: None) -> Result | Prepared:
    """Fetch and set up one entry, here; its smoke stage is left to an executor. A result when
    the entry ended before its smoke stage (skipped, fetch-error, setup-error, error)."""
    tracker = _Tracker(entry, log_dir, time.monotonic())

    def prepare() -> Prepared:
        job = _prepare(entry, registry, cache, options, tracker, on_stage)
        smoke_log = tracker.folder / "smoke.log"
        smoke_log.touch()
        return Prepared(entry.id, entry.full_id, tracker.level, tracker.commit, tracker.env_key, tuple(tracker.stages),
                        time.monotonic() - tracker.started, str(tracker.folder), job)

    return _guarded(tracker, prepare)


_T = TypeVar("_T")


def _guarded(tracker: _Tracker, work: Callable[[], _T]) -> _T | Result:
    """``work()``, or the result of the entry that it ended (a bug of ours becomes status error)."""
    try:
        return work()
    except EntrySkipped as exc:
        return tracker.finish("skipped", exc.message)
    except FetchError as exc:
        return tracker.finish("fetch-error", exc.message, failed_stage="fetch")
    except EnvSetupError as exc:
        return tracker.finish("setup-error", exc.message, failed_stage="setup")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 (a bug of ours is reported for this entry, the run goes on)
        full = disk_full(exc)
        if full is not None:  # writing a log, say: where no stage's own folder is named
            return _out_of_space(tracker, full, exc)
        tracker.write_trace(traceback.format_exc())
        summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return tracker.finish("error", f"awrepro internal error: {summary}", failed_stage=tracker.current)


def _out_of_space(tracker: _Tracker, reason: str, exc: Exception) -> Result:
    """A full disk is the machine's setup failing, never a crash: a fetch error while fetching, else a setup error."""
    filename = getattr(exc, "filename", None)
    folder = Path(os.fsdecode(filename)).parent if filename else tracker.folder
    status, stage = ("fetch-error", "fetch") if tracker.current in (None, "fetch") else ("setup-error", tracker.current)
    return tracker.finish(status, f"{reason} in {folder}", failed_stage=stage)


def interrupted_result(entry: Entry, log_dir: Path, running: tuple[str, float] | None) -> Result:
    """An entry the run was cancelled before it finished: ``running`` is its stage and time so far
    (None: it never started). Its log is the stage's, as far as the stage got."""
    stage = {"starting": "fetch", "static": "smoke"}.get(running[0], running[0]) if running else None
    log = _Tracker(entry, log_dir, 0.0).folder / f"{stage}.log"
    impl = entry.impl
    return Result(
        entry_id=entry.id,
        full_id=entry.full_id,
        status="interrupted",
        level=None,
        failed_stage=stage,
        duration=running[1] if running else 0.0,
        note=f"interrupted during {stage}" if stage else "not started: the run was interrupted",
        commit=impl.code.pin if impl else None,
        env_key=None,
        log_path=str(log) if stage and log.is_file() else None,
    )


def _prepare(entry: Entry, registry: LoadedRegistry, cache: Cache, options: Options, tracker: _Tracker,
             on_stage: Callable[[str], None]) -> SmokeJob:
    """Fetch and set up the entry; return its smoke test (or static check) as plain data."""
    mode = entry_mode(entry, options)
    impl = entry.impl
    assert impl is not None
    tracker.commit = impl.code.pin

    on_stage("fetch")
    with tracker.stage("fetch") as log:
        checkout = fetching.ensure(cache, impl, registry.root, options.fetch, log)
        inside(checkout.tree, checkout.root, *_cwd(impl, mode))  # before setup runs anything there
    on_stage("setup")
    with tracker.stage("setup") as log:
        static = impl.smoke.static
        if mode == Mode.STATIC and static is not None and static.python:
            interpreter = interpreters.find(static.python)
            if interpreter is None:
                raise EntrySkipped(f"static check needs Python {static.python}; none found")
            environment = None
        else:
            environment = prepare_env(cache, impl, checkout, options, log)
            tracker.env_key = environment.key
            interpreter = None
    # Only now: an entry that failed before its check has no level.
    tracker.level = impl.smoke.level if mode == Mode.SMOKE else Mode.STATIC
    root, tree = checkout.root, checkout.tree
    if environment is not None and environment.code_root is not None:  # its own copy of the checkout
        root, tree = environment.code_root, environment.prefix / envs.COPY_FOLDER
    return smoke_job(entry, impl, mode, root, environment, interpreter, cache, options,
                     tracker.folder / "smoke.log", tree=tree)


def _cwd(impl: Implementation, mode: str) -> tuple[str, str]:
    """Where the smoke test (or static check) runs, and its registry key."""
    static = impl.smoke.static
    if mode == Mode.STATIC and static is not None:
        return static.cwd, "smoke.static.cwd"
    return impl.smoke.cwd, "smoke.cwd"


@dataclass(frozen=True)
class SmokeJob:
    """One entry's smoke test (or static check) as plain data: all an executor needs to run it."""

    full_id: str
    command: str | None  # a shell command, or
    script: str | None  # a Python script, run by the environment's `python`
    cwd: str
    environ: dict[str, str]  # scrubbed, the environment active; TMPDIR is set when the job runs
    interpreter: str | None  # for a static check with a bare interpreter: `python` on PATH is this
    timeout: int  # seconds
    expect: str | None  # a regular expression the output must match
    passed_note: str  # the note of a pass (a static check's reason)
    gpu: bool  # may use a GPU (CUDA_VISIBLE_DEVICES is left as the machine sets it)
    scratch: str  # where the job's temporary folder is made (inside the cache)
    log_path: str
    readable: list[str]  # what it must see in the sandbox: the cache, its code, its interpreter
    network: bool  # False: the sandbox cuts the network


def smoke_job(entry: Entry, impl: Implementation, mode: str, root: Path, environment: envs.Environment | None,
              interpreter: interpreters.Interpreter | None, cache: Cache, options: Options,
              log_path: Path, *, tree: Path | None = None) -> SmokeJob:
    """``root`` is where the entry's code is (``tree``, the whole checkout, holds it): only read,
    never written; paths from the registry are resolved in it before anything runs."""
    smoke = impl.smoke
    static = smoke.static if mode == Mode.STATIC else None
    command, script = (static.command, static.script) if static else (smoke.command, smoke.script)
    gpu = options.gpu and smoke.gpu
    base = process.scrubbed_environ()
    if not gpu:
        base["CUDA_VISIBLE_DEVICES"] = ""
    if environment is not None:
        environ = envs.activate(environment.prefix, impl, root, base)
    else:
        assert interpreter is not None
        environ = {**base, **envs.expand_vars(impl, root)}
    python = environment.python if environment is not None else interpreter.path if interpreter else None
    return SmokeJob(
        full_id=entry.full_id,
        command=command if script is None else None,
        script=script,
        cwd=str(inside(tree or root, root, *_cwd(impl, mode))),  # again: steps may have made a symlink
        environ=environ,
        interpreter=str(interpreter.path) if environment is None and interpreter is not None else None,
        timeout=options.timeout or (static.timeout if static and static.timeout else smoke.timeout),
        expect=None if static else smoke.expect,
        passed_note=static.reason if static else "",
        gpu=gpu,
        scratch=str(cache.root / "tmp"),
        log_path=str(log_path),
        readable=[str(cache.root), str(root), *([_installation(python)] if python else [])],
        network=options.network and smoke.network,
    )


def _installation(python: Path) -> str:
    """The folder an interpreter is installed in (a hidden home or /tmp could otherwise hide it)."""
    return str(Path(os.path.realpath(python)).parent.parent)


def run_smoke_job(job: SmokeJob) -> tuple[str, str]:
    """Run a smoke test (or static check) in the sandbox; return (status, note).

    It writes only its own TMPDIR and scratch HOME (both removed afterwards)."""
    import tempfile

    from awrepro.sandbox import Confinement

    scratch = Path(job.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=scratch))
    try:
        environ = {**job.environ, "TMPDIR": str(tmp)}
        if job.gpu:  # what the machine (or Slurm's --gres) set for this job
            environ.update({k: v for k, v in os.environ.items() if k == "CUDA_VISIBLE_DEVICES"})
        if job.interpreter is not None:  # a bare interpreter for a static check: `python` on PATH is it
            shim = tmp / "bin"
            shim.mkdir()
            (shim / "python").symlink_to(job.interpreter)
            environ["PATH"] = f"{shim}{os.pathsep}{environ.get('PATH', os.defpath)}"
        if job.script is not None:
            (tmp / "smoke.py").write_text(job.script)
            cmd: list[str] = ["python", str(tmp / "smoke.py")]
        else:
            cmd = ["/bin/sh", "-c", job.command or "true"]
        confinement = Confinement(writable=(tmp,), readable=tuple(Path(p) for p in job.readable),
                                  scratch_home=tmp / "home", network=job.network)
        done = process.run(cmd, cwd=Path(job.cwd), env=environ, timeout=job.timeout, log_path=Path(job.log_path),
                           sandbox=confinement)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if done.timed_out:
        return "timeout", f"timed out after {job.timeout} s"
    if not done.ok:
        reason = process.last_error_line(done.output) or f"exit code {done.returncode}"
        if not job.network and _tried_network(done.output):
            return "failed", f"tried the network, which is cut for this smoke test: {reason}"
        return "failed", reason
    if job.expect and not re.search(job.expect, done.output):
        return "failed", expect_failure(job.expect, done.output)
    return "passed", job.passed_note


_NETWORK_ERRORS = re.compile(r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
                             r"Could not resolve host|getaddrinfo failed|No address associated with hostname|"
                             r"\[Errno (101|111|-2|-3|-5)\]|NameResolutionError|nodename nor servname|"
                             r"Connection refused")  # only loopback is left, and nothing listens there


def _tried_network(output: str) -> bool:
    """The output shows an attempt to reach the network (which the sandbox had cut)."""
    return bool(_NETWORK_ERRORS.search(output))


EXPECT_TAIL_LINES = 3


def expect_failure(expect: str, output: str) -> str:
    """Why a passing command failed its ``expect``: the pattern as written (never repr'd: that
    doubles each backslash), that it is a regular expression, and the end of the output."""
    tail = [line.strip()[:160] for line in output.splitlines() if line.strip()][-EXPECT_TAIL_LINES:]
    seen = " | ".join(tail) if tail else "(no output)"
    return (f"output did not match expect '{expect}' (a regular expression: put a backslash before "
            f". ( ) [ ] + * ? to match one as it is); its last lines: {seen}")


class _Tracker:
    """Times and logs the stages of one entry and assembles its result."""

    def __init__(self, entry: Entry, log_dir: Path, started: float) -> None:
        self.entry = entry
        self.folder = log_dir / entry.full_id.replace("/", "--")
        self.started = started
        self.stages: list[StageResult] = []
        self.current: str | None = None
        self.level: str | None = None
        self.commit: str | None = None
        self.env_key: str | None = None

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def write_trace(self, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "awrepro-error.log").open("a") as log:
            log.write(text)

    def finish(self, status: str, note: str, failed_stage: str | None = None) -> Result:
        if self.current is not None:  # the stage that raised
            self.stages.append(StageResult(self.current, status, self._elapsed_in_stage, str(self.folder / f"{self.current}.log")))
            self.current = None
        elif failed_stage is not None:  # a stage that ran to its end but failed the entry (a failing smoke test)
            self.stages = [replace(s, status=status) if s.name == failed_stage else s for s in self.stages]
        log = str(self.folder / f"{failed_stage}.log") if failed_stage else None
        return Result(
            entry_id=self.entry.id,
            full_id=self.entry.full_id,
            status=status,
            level=None if status == "skipped" else self.level,
            failed_stage=failed_stage,
            duration=time.monotonic() - self.started,
            note=printable(note),  # third-party output: every report and the history get it sanitised
            commit=self.commit,
            env_key=self.env_key,
            log_path=log,
            stages=tuple(self.stages),
        )

    _stage_started = 0.0

    @property
    def _elapsed_in_stage(self) -> float:
        return time.monotonic() - self._stage_started


class _Stage:
    def __init__(self, tracker: _Tracker, name: str) -> None:
        self.tracker = tracker
        self.name = name

    def __enter__(self) -> Path:
        self.tracker.current = self.name
        self.tracker._stage_started = time.monotonic()
        self.tracker.folder.mkdir(parents=True, exist_ok=True)
        log = self.tracker.folder / f"{self.name}.log"
        log.touch()  # the reports name this log even when the stage had nothing to say (a reused environment)
        return log

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            tracker = self.tracker
            tracker.stages.append(StageResult(self.name, "ok", tracker._elapsed_in_stage, str(tracker.folder / f"{self.name}.log")))
            tracker.current = None
