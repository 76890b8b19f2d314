"""``awrepro log ID``: the last run of an entry, where its logs are, and the failing log's tail.

What a user reads first after a red ``check``: stage, status and note, the full path of each
stage's log, then the end of the log of the stage that failed (the whole of it with ``--all``).
"""

from __future__ import annotations

from pathlib import Path

from awrepro import console, history
from awrepro.constants import EXIT_OK
from awrepro.errors import UsageError
from awrepro.registry import LoadedRegistry

STAGES = ("fetch", "setup", "smoke")
TAIL_LINES = 40


def log_folder(record: history.Record) -> Path | None:
    """The run's folder of this entry's stage logs, as recorded."""
    if record.log_dir:
        return Path(record.log_dir)
    return Path(record.log_path).parent if record.log_path else None


def run(registry: LoadedRegistry, db: Path, entry_id: str, *, stage: str | None, run_id: int | None,
        whole: bool) -> int:
    if stage is not None and stage not in STAGES:
        raise UsageError(f"--stage {stage!r}: use {', '.join(STAGES)}")
    entry = registry.select([entry_id])[0]
    records = history.entry_history(db, entry.full_id, limit=1_000_000 if run_id else 1)
    if run_id is not None:
        records = [r for r in records if r.run_id == run_id]
    if not records:
        which = f"in run {run_id}" if run_id is not None else "yet"
        raise UsageError(f"{entry.id}: no recorded run {which} (`awrepro history {entry.id}` lists its runs)")
    record = records[0]
    folder = log_folder(record)
    _print_summary(entry.id, record, folder)
    shown = stage or record.stage or _last_stage_with_log(folder)
    if shown is None or folder is None:
        return EXIT_OK
    _print_log(folder / f"{shown}.log", whole)
    return EXIT_OK


def _print_summary(entry_id: str, record: history.Record, folder: Path | None) -> None:
    level = f" ({record.level})" if record.level and record.stage in (None, "smoke") else ""
    where = f" at {record.stage}" if record.stage else ""
    console.print_plain(f"{entry_id}: {record.status}{level}{where} in run {record.run_id}, {record.finished_at}, "
                        f"{record.duration:.1f}s")
    if record.note:
        console.print_plain(f"note: {record.note}")
    if folder is None:
        console.print_plain("logs: none recorded for this run")
        return
    for name in STAGES:
        path = folder / f"{name}.log"
        if path.is_file():
            console.print_plain(f"  {name:<6} {_stage_state(name, record):<11} {path}")
    if not folder.is_dir():
        console.print_plain(f"logs: {folder} is gone (removed by hand or by a cache cleanup)")


def _stage_state(name: str, record: history.Record) -> str:
    """A stage before the one that failed was ok; the failing one has the entry's status."""
    if record.stage is None:
        return "ok" if record.status != "skipped" else ""
    if name == record.stage:
        return record.status
    return "ok" if STAGES.index(name) < STAGES.index(record.stage) else "not run"


def _last_stage_with_log(folder: Path | None) -> str | None:
    if folder is None:
        return None
    present = [name for name in STAGES if (folder / f"{name}.log").is_file()]
    return present[-1] if present else None


def _print_log(path: Path, whole: bool) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        console.print_plain(f"({path} cannot be read: {exc.strerror})")
        return
    from awrepro.sanitize import log_text

    lines = log_text(text).splitlines()  # as a terminal last showed each line; controls escaped
    if not lines:
        console.print_plain(f"--- {path} is empty ---")
        return
    if whole or len(lines) <= TAIL_LINES:
        console.print_plain(f"--- {path} ({len(lines)} lines) ---")
    else:
        console.print_plain(f"--- last {TAIL_LINES} of {len(lines)} lines of {path} (--all for the whole log) ---")
        lines = lines[-TAIL_LINES:]
    for line in lines:
        console.print_plain(line)
