"""``awrepro report collect RUN_DIR``: finish a ``check --executor slurm`` whose submitter died.

Waits for the run's jobs still queued or running, then records every result in the history
(the run's own record, as if the submitter had waited) and writes the reports it asked for.
"""

from __future__ import annotations

from pathlib import Path

from awrepro import history, process
from awrepro.cache import require_writable
from awrepro.commands.check import conclude
from awrepro.executors import slurm
from awrepro.progress import Board
from awrepro.report_files import Reports
from awrepro.results import Result


def run(run_dir: Path) -> int:
    folder = run_dir / "slurm"
    state = slurm.RunState.load(folder)
    meta = state.meta
    for where, what in ((folder, "the run folder"), (Path(meta["db"]).parent, "the folder of the results database")):
        require_writable(where, what, "collect the run where its cache can be written")
    slurm.check_tools()
    finished = [Result.from_dict(r) for r in state.finished]
    run_id, digests = int(meta["run_id"]), dict(meta["digests"])
    with history.connect(Path(meta["db"]), write=True) as conn:
        def record(result: Result) -> None:
            history.record(conn, run_id, result, digests.get(result.full_id))

        for result in finished:
            record(result)
        with process.interruptible(), Board(len(state.pending), "collect") as board:
            # Ctrl-C stops the waiting, not the jobs: collecting again later finishes the run.
            waited, interrupted = slurm.watch(folder, state, board, record, cancel=False)
        history.finish_run(conn, run_id, interrupted=interrupted)
        previous = history.previous(conn, run_id)
    reports = Reports(**{kind: Path(path) if path else None for kind, path in meta["reports"].items()})
    return conclude(finished + waited, list(meta["order"]), previous, reports, registry=str(meta["registry"]),
                    started_at=str(meta["started_at"]), interrupted=interrupted, fail_on=str(meta["fail_on"]))
