"""``awrepro check``: fetch, set up and smoke-test entries in parallel; report, record, exit.

Results are recorded in the history as each entry finishes, so an interrupted run keeps
what it finished. On Ctrl-C (or SIGTERM from a cancelled CI job) running children are
killed, the finished results are reported, and the exit code is 130.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from awrepro import console, history, process, report, report_files, runner, schedule
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from awrepro.progress import Board
from awrepro.registry import Entry, LoadedRegistry, display_path
from awrepro.report_files import Reports
from awrepro.results import Result, kind
from awrepro.spec import spec_digest

if TYPE_CHECKING:
    import sqlite3

    from awrepro.executors.slurm import SlurmOptions
    from awrepro.history import Record


def run(registry: LoadedRegistry, cache: Cache, entries: Sequence[Entry], *, jobs: int, options: runner.Options,
        db: Path, reports: Reports, fail_on: str, shard: tuple[int, int] | None,
        slurm: SlurmOptions | None = None) -> int:
    # Opened for writing first: a damaged or read-only database stops the run before any work.
    with history.connect(db, write=True) as conn:
        durations = history.durations(conn)
        if shard is not None:
            entries = schedule.shard(entries, shard[0], shard[1], durations)
        ordered = schedule.longest_first(entries, durations)
        log_dir = cache.new_log_folder("check")
        run_id = history.start_run(conn, str(registry.path))
        started_at = history.now_iso()
        estimates = {e.id: durations[e.full_id] for e in ordered if e.full_id in durations}
        board = Board(len(ordered), "check", order=[e.id for e in ordered], estimates=estimates, jobs=jobs)
        if options.executor == "slurm":
            from awrepro.executors import slurm as executor

            digests = {e.full_id: spec_digest(registry, e) for e in entries}  # what --changed compares later
            meta = {"db": str(db.absolute()), "run_id": run_id, "registry": display_path(registry.path),
                    "digests": digests,
                    "started_at": started_at, "fail_on": fail_on,
                    "reports": {name: str(path.absolute()) if path else None for name, path in vars(reports).items()},
                    "order": [e.full_id for e in entries]}
            results, interrupted = executor.run_all(
                ordered, registry, cache, options, slurm or executor.SlurmOptions(), log_dir, jobs, board,
                lambda r: history.record(conn, run_id, r, digests.get(r.full_id)), meta)
        else:
            results, interrupted = _run_all(ordered, registry, cache, options, log_dir, jobs, conn, run_id, board)
        history.finish_run(conn, run_id, interrupted=interrupted)
        previous = history.previous(conn, run_id)
    return conclude(results, [e.full_id for e in entries], previous, reports, registry=display_path(registry.path),
                    started_at=started_at, interrupted=interrupted, fail_on=fail_on)


def conclude(results: list[Result], order: list[str], previous: dict[str, Record], reports: Reports, *,
             registry: str, started_at: str, interrupted: bool, fail_on: str) -> int:
    """The end of a run (here, or collected later): table, reports, exit code."""
    position = {full_id: i for i, full_id in enumerate(order)}
    results.sort(key=lambda r: position[r.full_id])
    regressions = [r for r in results if r.failing and kind(r.status).about_code and r.full_id in previous
                   and previous[r.full_id].status == "passed"]
    # Files first: a terminal or pipe that went away must not cost the reports.
    report_files.write_all(results, reports, registry=registry, started_at=started_at,
                           finished_at=history.now_iso(), interrupted=interrupted)
    report.print_check_table(results, {r.full_id for r in regressions}, only_failing=console.verbosity() < 0)
    if interrupted:
        unfinished = sum(r.status == "interrupted" for r in results)
        console.error(f"interrupted: {len(results) - unfinished} of {len(results)} entries finished and were recorded")
        return EXIT_INTERRUPTED
    return exit_code(results, regressions, fail_on)


def _run_all(entries: list[Entry], registry: LoadedRegistry, cache: Cache, options: runner.Options, log_dir: Path,
             jobs: int, conn: sqlite3.Connection, run_id: int, board: Board) -> tuple[list[Result], bool]:
    """Every entry's result, and whether the run was cancelled. A cancelled run still accounts for
    every entry: those that did not finish are `interrupted` (reported, but not recorded as a verdict)."""
    results: list[Result] = []
    interrupted = False
    with process.interruptible(), board, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        def one(entry: Entry) -> Result:
            board.stage(entry.id, "starting")
            return runner.check_entry(entry, registry, cache, options, log_dir, lambda s: board.stage(entry.id, s))

        digests = {e.full_id: spec_digest(registry, e) for e in entries}  # what --changed compares later

        def finished(result: Result) -> None:
            results.append(result)
            history.record(conn, run_id, result, digests.get(result.full_id))
            board.done(result.entry_id, report.result_line(result), report.style_of(result.status),
                       failing=result.failing)

        futures = {pool.submit(one, e): e for e in entries}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(future.result())
        except (KeyboardInterrupt, console.ClosedPipe):  # Ctrl-C, SIGTERM, or nobody reads the output any more
            interrupted = True
            where = {futures[f].id: board.running_for(futures[f].id) for f in pending}
            for future in pending:
                future.cancel()
            process.cancel_all()
            wait(pending)
            for future in pending:
                entry = futures[future]
                if not future.cancelled() and future.exception() is None:
                    finished(future.result())  # it finished while the others were being stopped
                else:
                    results.append(runner.interrupted_result(entry, log_dir, where[entry.id]))
    return results, interrupted


def slurm_options(executor: str, partition: str | None, sbatch_args: Sequence[str] | None) -> SlurmOptions | None:
    """``--executor`` and its options, checked before any work (None: not Slurm)."""
    from awrepro.errors import UsageError
    from awrepro.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: use {' or '.join(EXECUTORS)}")
    if executor != "slurm":
        if partition or sbatch_args:
            raise UsageError("--partition and --sbatch-arg need --executor slurm")
        return None
    from awrepro.executors import slurm

    slurm.check_tools()
    return slurm.SlurmOptions(partition, tuple(sbatch_args or ()))


def exit_code(results: list[Result], regressions: list[Result], fail_on: str) -> int:
    if fail_on == "never":
        return EXIT_OK
    if fail_on == "regression":
        return EXIT_FAILED if regressions else EXIT_OK
    return EXIT_FAILED if any(r.failing for r in results) else EXIT_OK


def with_trial_smoke(entries: Sequence[Entry], command: str | None, script_file: Path | None) -> list[Entry]:
    """``--smoke-command``/``--smoke-script``: one entry, its smoke test replaced for this run only.

    The rest of its smoke table (cwd, timeout, gpu, expect) stays; the registry is not touched.
    The result is recorded with the trial's spec, so ``--changed`` still picks the entry.
    """
    from awrepro.errors import UsageError
    from awrepro.registry import Entry

    if command is not None and script_file is not None:
        raise UsageError("give --smoke-command or --smoke-script, not both")
    with_code = [e for e in entries if e.impl is not None]
    if len(entries) != 1 or not with_code:
        raise UsageError("--smoke-command and --smoke-script try a smoke test on one entry with code; name one")
    entry = with_code[0]
    assert entry.impl is not None and entry.name is not None
    script = None
    if script_file is not None:
        try:
            script = script_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--smoke-script {script_file}: cannot read it ({exc})") from None
    smoke = entry.impl.smoke._replace(command=command, script=script)
    paper = entry.paper._replace(impl={**entry.paper.impl, entry.name: entry.impl._replace(smoke=smoke)})
    return [Entry(entry.paper_id, paper, entry.name, entry.primary)]
