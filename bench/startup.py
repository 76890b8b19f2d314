"""Start-up cost of `awrepro --help` and `awrepro list` against a minimal typer + rich program.

Measured (medians, alternated A, B, A, B, ... in one run):
  * `awrepro --help`                     vs  `python prog.py --help`
  * `awrepro --registry R --cache-dir C list` (the shipped registry, copied into a temp folder so
    edits to it cannot change the run; the cache C is warm: one run validated the registry and
    its JSON memo is in C)       vs  `python prog.py`, a one-command typer app printing a 20-row
    rich Table.
Both get the same environment (COLUMNS=200, output to a pipe).
Targets: list <= 1.1x the minimal program; --help <= 1.0x its --help.
Prints PASS/MISS; always exits 0.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import _benchlib as b

MINIMAL_PROGRAM = '''\
"""The baseline: a typer app with one command that prints a 20-row rich Table."""
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False)


@app.command()
def main(limit: int = typer.Option(20, help="How many rows.")) -> None:
    """Print a table."""
    table = Table(title="Papers")
    for name in ("ID", "Paper", "Venue", "Code", "Status"):
        table.add_column(name)
    for i in range(limit):
        table.add_row(f"paper-{i}", f"A paper title number {i} that is long", "NeurIPS 2020",
                      f"owner/repo-{i}@1a2b3c4", "passed")
    Console().print(table)


if __name__ == "__main__":
    app()
'''


def body(tmp: Path, repeat: int) -> None:
    print(__doc__.strip().splitlines()[0])
    print(f"awrepro {b.check_awrepro_importable()}  (run as: {' '.join(b.awrepro_cmd())})")
    print(b.machine_note())

    shipped = b.REPO_ROOT / "registry.toml"
    registry = tmp / "registry" / "registry.toml"
    registry.parent.mkdir()
    shutil.copy2(shipped, registry)
    if (b.REPO_ROOT / "patches").is_dir():
        shutil.copytree(b.REPO_ROOT / "patches", registry.parent / "patches")
    prog = tmp / "prog.py"
    prog.write_text(MINIMAL_PROGRAM)
    cache = tmp / "cache"
    env = b.base_environ()
    aw = b.awrepro_cmd()
    list_cmd = [*aw, "--registry", str(registry), "--cache-dir", str(cache), "list"]
    prog_cmd = [sys.executable, str(prog)]

    # Warm-up: validates the registry once (its JSON memo lands in the cache), fills OS caches.
    b.run(list_cmd, env=env)
    for cmd in (list_cmd, prog_cmd, [*aw, "--help"], [*prog_cmd, "--help"]):
        b.run(cmd, env=env)
    rows = len(b.run(list_cmd, env=env).stdout.splitlines())

    samples = b.alternate({
        "awrepro list": lambda: b.timed(list_cmd, env=env),
        "minimal prog": lambda: b.timed(prog_cmd, env=env),
        "awrepro --help": lambda: b.timed([*aw, "--help"], env=env),
        "minimal prog --help": lambda: b.timed([*prog_cmd, "--help"], env=env),
    }, repeat, label="startup")

    b.print_table(f"Wall time, {repeat} runs each (awrepro list printed {rows} lines; warm registry memo)",
                  b.TIMING_HEADERS, b.timing_rows(samples))
    med = {name: b.median(v) for name, v in samples.items()}
    b.print_table("Ratios of medians", b.RATIO_HEADERS, [
        b.ratio_row("awrepro list / minimal prog", med["awrepro list"] / med["minimal prog"], 1.1),
        b.ratio_row("awrepro --help / minimal prog --help", med["awrepro --help"] / med["minimal prog --help"], 1.0),
    ])


def main() -> int:
    args = b.parser(__doc__, default_repeat=30).parse_args()
    return b.main_wrapper(lambda tmp: body(tmp, args.repeat), args.keep)


if __name__ == "__main__":
    sys.exit(main())
