"""The ``slurm`` executor: smoke stages as one Slurm job array, a task per entry.

Code and environments are prepared where awrepro runs (the login node), in the cache, which
must be on a filesystem the nodes share. The run folder (``CACHE/logs/check-…/``) then holds,
under ``slurm/``:

    run.json            what ``report collect`` needs: the run's history id, reports, the
                        entries finished here, the prepared ones and the arrays submitted
    ARRAY/tasks.json    the array's smoke jobs (plain data, ``runner.SmokeJob``), by task index
    ARRAY/results/I.json  written by task I (``awrepro _slurm-task ARRAY``) when its smoke stage ends
    ARRAY/out/I.out     the task's own output (Slurm's --output)

A task that cannot read ``tasks.json`` exits ``NO_CACHE`` (its node does not see the cache).
A task that ended without a result file was ended by Slurm: its state says why (TIMEOUT is
``timeout``; cancelled, node failure, preemption or a lost record are ``infra``). Only Slurm's
client commands are used (sbatch, squeue, scontrol, scancel): no accounting database.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awrepro import console, process, report, runner
from awrepro.cache import Cache
from awrepro.errors import UsageError
from awrepro.progress import Board
from awrepro.registry import Entry, LoadedRegistry
from awrepro.results import Result

TOOLS = ("sbatch", "squeue", "scontrol", "scancel")
NO_CACHE = 97  # a task's exit code when its node cannot see the cache
MARGIN_S = 30  # --time leaves awrepro's own timeout (and its TERM → KILL grace) room to end first
POLL_S = 1.0
LOST_GRACE_S = 10.0  # a finished task's result file may reach a shared filesystem a little late
_ENDED_BY_SLURM = {"TIMEOUT": "timeout"}  # any other end without a result is infra


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    sbatch_args: tuple[str, ...] = ()


@dataclass
class Array:
    """One submitted job array: task I runs ``full_ids[I]``."""

    name: str  # its folder under slurm/
    job_id: str
    full_ids: list[str]
    gpu: bool


@dataclass
class RunState:
    """``slurm/run.json``: enough to finish the run (report collect) if the submitter dies."""

    meta: dict[str, Any]  # db, run_id, registry, started_at, reports, fail_on, order
    finished: list[dict[str, Any]] = field(default_factory=list)  # results of entries that ended here
    pending: list[dict[str, Any]] = field(default_factory=list)  # runner.Prepared, as dicts
    arrays: list[Array] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        data = {"meta": self.meta, "finished": self.finished, "pending": self.pending,
                "arrays": [vars(a) for a in self.arrays]}
        _write_json(folder / "run.json", data)

    @classmethod
    def load(cls, folder: Path) -> RunState:
        path = folder / "run.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data["meta"], data["finished"], data["pending"], [Array(**a) for a in data["arrays"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not the folder of a run with --executor slurm ({exc})") from None


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise UsageError(f"--executor slurm needs Slurm's client commands on PATH; missing: {', '.join(missing)}")


def time_minutes(timeout_s: int) -> int:
    """Slurm's --time is whole minutes: rounded up, with room for awrepro's own timeout to end first."""
    return max(1, math.ceil((timeout_s + MARGIN_S) / 60))


# ---------------------------------------------------------------- check --executor slurm


def run_all(entries: Sequence[Entry], registry: LoadedRegistry, cache: Cache, options: runner.Options,
            slurm: SlurmOptions, log_dir: Path, jobs: int, board: Board, record: Callable[[Result], None],
            meta: dict[str, Any]) -> tuple[list[Result], bool]:
    """Prepare every entry here, submit their smoke stages, wait; return (results, interrupted)."""
    check_tools()
    folder = log_dir / "slurm"
    state = RunState(meta)
    results: list[Result] = []
    with process.interruptible(), board:
        prepared, interrupted = _prepare_all(entries, registry, cache, options, log_dir, jobs, board, results, record)
        if interrupted:
            return results, True
        state.finished = [r.to_dict() for r in results]
        state.pending = [p.to_dict() for p in prepared]
        state.save(folder)  # before sbatch: a submitter killed now leaves a run that collect can finish
        for gpu in sorted({p.job.gpu for p in prepared}):
            group = [p for p in prepared if p.job.gpu == gpu]
            try:
                state.arrays.append(_submit(folder, f"array{len(state.arrays)}", group, slurm, gpu))
            except _SubmitError as exc:
                for p in group:
                    result = p.finish("infra", f"sbatch failed: {exc}", 0.0)
                    results.append(result)
                    record(result)
                    board.done(p.entry_id, report.result_line(result), report.style_of("infra"), failing=True)
                state.finished += [r.to_dict() for r in results[-len(group):]]
            state.save(folder)
        waited, interrupted = watch(folder, state, board, record)
    return results + waited, interrupted


def _prepare_all(entries: Sequence[Entry], registry: LoadedRegistry, cache: Cache, options: runner.Options,
                 log_dir: Path, jobs: int, board: Board, results: list[Result],
                 record: Callable[[Result], None]) -> tuple[list[runner.Prepared], bool]:
    prepared: list[runner.Prepared] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        def one(entry: Entry) -> Result | runner.Prepared:
            board.stage(entry.id, "starting")
            return runner.prepare_entry(entry, registry, cache, options, log_dir, lambda s: board.stage(entry.id, s))

        futures = {pool.submit(one, e): e for e in entries}
        pending: set[Future[Result | runner.Prepared]] = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    if isinstance(outcome, Result):
                        results.append(outcome)
                        record(outcome)
                        board.done(outcome.entry_id, report.result_line(outcome), report.style_of(outcome.status),
                                   failing=outcome.failing)
                    else:
                        prepared.append(outcome)
                        board.stage(outcome.entry_id, "submitting")
        except KeyboardInterrupt:
            where = {futures[f].id: board.running_for(futures[f].id) for f in pending}
            for future in pending:
                future.cancel()
            process.cancel_all()
            wait(pending)
            for future in pending:  # not recorded: an unfinished entry is no verdict
                entry = futures[future]
                results.append(runner.interrupted_result(entry, log_dir, where[entry.id]))
            results.extend(p.finish("interrupted", "not submitted: the run was interrupted", 0.0) for p in prepared)
            return prepared, True
    return prepared, False


class _SubmitError(Exception):
    pass


def _submit(folder: Path, name: str, group: list[runner.Prepared], slurm: SlurmOptions, gpu: bool) -> Array:
    array_dir = folder / name
    (array_dir / "results").mkdir(parents=True, exist_ok=True)
    (array_dir / "out").mkdir(exist_ok=True)
    _write_json(array_dir / "tasks.json", [vars(p.job) for p in group])
    task = f"exec {shlex.quote(sys.executable)} -m awrepro _slurm-task {shlex.quote(str(array_dir))}"
    cmd = ["sbatch", "--parsable", f"--job-name=awrepro-{folder.parent.name}", f"--array=0-{len(group) - 1}",
           f"--output={array_dir / 'out' / '%a.out'}", f"--chdir={array_dir}",
           f"--time={time_minutes(max(p.job.timeout for p in group))}",
           *([f"--partition={slurm.partition}"] if slurm.partition else []),
           *(["--gres=gpu:1"] if gpu else []),
           *slurm.sbatch_args,  # last: the user's own arguments win
           f"--wrap={task}"]
    done = _slurm(cmd)
    if not done.ok:
        raise _SubmitError(process.last_error_line(done.output) or f"exit code {done.returncode}")
    job_id = done.output.strip().split(";")[0]
    console.info(f"submitted job array {job_id} ({len(group)} tasks{', --gres=gpu:1' if gpu else ''}): "
                 f"scontrol show job {job_id}; should this process end first: awrepro report collect {folder.parent}")
    return Array(name, job_id, [p.full_id for p in group], gpu)


def _slurm(cmd: list[str]) -> process.Completed:
    # Slurm's own commands, not third-party code: they get the user's environment (SLURM_CONF & co).
    return process.run(cmd, env=dict(os.environ), timeout=120, whole_output=True)


# ---------------------------------------------------------------- waiting, and collecting later


def watch(folder: Path, state: RunState, board: Board | None, record: Callable[[Result], None], *,
          cancel: bool = True) -> tuple[list[Result], bool]:
    """Wait for the arrays' tasks; return (results, interrupted). Ctrl-C or SIGTERM cancels them
    (with ``cancel``; else they run on), and the tasks without a result are ``interrupted``."""
    prepared = {p["full_id"]: runner.Prepared.from_dict(p) for p in state.pending}
    open_tasks = {(a.job_id, i): (a, full_id) for a in state.arrays for i, full_id in enumerate(a.full_ids)}
    results: list[Result] = []
    gone_since: dict[tuple[str, int], float] = {}

    def finish(key: tuple[str, int], result: Result) -> None:
        open_tasks.pop(key)
        results.append(result)
        record(result)
        if board is not None:
            board.done(result.entry_id, f"{report.result_line(result)}  [job {key[0]}_{key[1]}]",
                       report.style_of(result.status), failing=result.failing)

    try:
        while open_tasks:
            queued = _queue(state.arrays)
            for key, (array, full_id) in list(open_tasks.items()):
                found = _task_result(folder / array.name, key[1])
                if found is not None:
                    finish(key, prepared[full_id].finish(*found))
                elif queued is None:
                    continue  # no answer this time: ask again
                elif key in queued:
                    gone_since.pop(key, None)
                    if board is not None:
                        board.stage(prepared[full_id].entry_id, f"{queued[key].lower()} (job {key[0]}_{key[1]})")
                elif time.monotonic() - gone_since.setdefault(key, time.monotonic()) >= LOST_GRACE_S \
                        or _slurm_state(key)[0] not in ("COMPLETED", "COMPLETING", ""):
                    status, note = _ended_without_result(key, folder / array.name)
                    finish(key, prepared[full_id].finish(status, note, 0.0))
            if open_tasks:
                time.sleep(POLL_S)
        _wait_off_queue(state.arrays)  # a task's result comes a moment before its job ends
    except KeyboardInterrupt:
        if cancel:
            _cancel(state.arrays)
        for key, (array, full_id) in list(open_tasks.items()):
            found = _task_result(folder / array.name, key[1])
            if found is not None:
                finish(key, prepared[full_id].finish(*found))
            else:  # not recorded: no verdict
                why = "cancelled (scancel)" if cancel else "still queued or running: collect it again later"
                results.append(prepared[full_id].finish("interrupted", f"interrupted: job {key[0]}_{key[1]} {why}", 0.0))
        return results, True
    return results, False


def _queue(arrays: list[Array]) -> dict[tuple[str, int], str] | None:
    """Tasks still in Slurm's queue (pending, running, completing) and their state; None when
    the controller did not answer (a task is not lost because slurmctld was busy a moment)."""
    if not arrays:
        return {}
    done = _slurm(["squeue", "-h", "-r", "-o", "%F|%K|%T", "-j", ",".join(a.job_id for a in arrays)])
    if not done.ok:  # job ids Slurm forgot (finished long ago) are an answer too: nothing queued
        return {} if "Invalid job id" in done.output else None
    queued: dict[tuple[str, int], str] = {}
    for line in done.output.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[1].isdigit():
            queued[(parts[0], int(parts[1]))] = parts[2]
    return queued


def _slurm_state(key: tuple[str, int]) -> tuple[str, str, str]:
    """(JobState, Reason, ExitCode) of a task from ``scontrol show job`` ('' when Slurm has no record of it)."""
    done = _slurm(["scontrol", "-o", "show", "job", f"{key[0]}_{key[1]}"])
    fields = dict(word.split("=", 1) for word in done.output.split() if "=" in word) if done.ok else {}
    return fields.get("JobState", ""), fields.get("Reason", ""), fields.get("ExitCode", "")


def _ended_without_result(key: tuple[str, int], array_dir: Path) -> tuple[str, str]:
    job = f"job {key[0]}_{key[1]}"
    state, reason, exit_code = _slurm_state(key)
    if state in _ENDED_BY_SLURM:
        return _ENDED_BY_SLURM[state], f"Slurm's time limit ended {job}"
    if not state:
        return "infra", f"Slurm has no record of {job} and it wrote no result"
    out = array_dir / "out" / f"{key[1]}.out"
    if exit_code.split(":")[0] == str(NO_CACHE) or not out.exists():  # the task never ran in the run folder
        return "infra", (f"{job} ended {state} and its node wrote nothing into {array_dir}: "
                         "the cache must be on a filesystem the nodes share")
    why = f" ({reason})" if reason and reason != "None" else ""
    last = _last_line(out)
    return "infra", f"{job} ended {state}{why} without a result" + (f": {last}" if last else "")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _task_result(array_dir: Path, index: int) -> tuple[str, str, float] | None:
    try:
        data = json.loads((array_dir / "results" / f"{index}.json").read_text(encoding="utf-8"))
        return str(data["status"]), str(data["note"]), float(data["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cancel(arrays: list[Array]) -> None:
    """scancel the arrays and wait (bounded) until Slurm has taken their tasks off the queue."""
    if not arrays:
        return
    with _signals_ignored():
        ids = [a.job_id for a in arrays]
        _slurm(["scancel", *ids])
        _wait_off_queue(arrays)
        console.error(f"cancelled job array{'s' if len(ids) > 1 else ''} {', '.join(ids)} (scancel)")


def _wait_off_queue(arrays: list[Array], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while _queue(arrays) != {} and time.monotonic() < deadline:
        time.sleep(0.2)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C while cancelling must not leave the jobs running."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


# ---------------------------------------------------------------- one task, on a node


def task(array_dir: Path, index: int) -> int:
    """Run task ``index`` of an array: one entry's smoke stage; write its result into the run folder."""
    host = socket.gethostname()
    try:
        job = runner.SmokeJob(**json.loads((array_dir / "tasks.json").read_text(encoding="utf-8"))[index])
    except OSError as exc:
        print(f"awrepro: node {host} cannot read {array_dir / 'tasks.json'} ({exc.strerror}): "
              "the cache must be on a filesystem the nodes share", file=sys.stderr)
        return NO_CACHE
    started = time.monotonic()
    if not Path(job.cwd).is_dir():
        status, note = "infra", f"node {host} cannot see {job.cwd}: the cache must be on a filesystem the nodes share"
    else:
        status, note = runner.run_smoke_job(job)
    _write_json(array_dir / "results" / f"{index}.json",
                {"status": status, "note": note, "duration": time.monotonic() - started, "node": host})
    return 0


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
