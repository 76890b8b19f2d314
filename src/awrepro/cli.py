"""The command line: wiring only. Each command's work lives in ``awrepro.commands``.

This is the one place that turns errors into messages and exit codes. Heavy modules
(pydantic, httpx, GitPython) are imported inside the commands that need them, so
``awrepro --help`` starts as fast as a bare typer program.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from awrepro import __version__
from awrepro.constants import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from awrepro.errors import AwreproError

app = typer.Typer(
    name="awrepro",
    help="Does the code behind a paper still run? Fetch, set up and smoke-test every entry of a registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Settings:
    """Global options, handed to every command through the click context."""

    registry: Optional[Path]
    cache_dir: Optional[Path]

    def load_registry(self):  # -> registry.LoadedRegistry (imported lazily)
        from awrepro import registry

        return registry.load(registry.discover(self.registry, os.environ, Path.cwd()))

    def cache(self):  # -> cache.Cache
        from awrepro.cache import Cache

        return Cache.open(self.cache_dir, os.environ)


def _version(value: bool) -> None:
    if value:
        print(f"awrepro {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    registry: Annotated[Optional[Path], typer.Option("--registry", help="Registry file (else $AWREPRO_REGISTRY, else ./registry.toml or a parent's, else the shipped one).", show_default=False)] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Cache folder (else $AWREPRO_CACHE_DIR, else the user cache folder).", show_default=False)] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More output.")] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less output.")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    from awrepro import console, logfile

    console.set_verbosity(verbose - quiet)
    logfile.remember_cache_dir(cache_dir)
    ctx.obj = Settings(registry=registry, cache_dir=cache_dir)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj  # type: ignore[no-any-return]


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


@app.command("list")
def list_(
    ctx: typer.Context,
    section: Annotated[Optional[str], typer.Option(help="Only papers of this section of the list.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option(help="Only papers with this tag (repeatable: all must match).")] = None,
    has_code: Annotated[Optional[bool], typer.Option("--has-code/--no-code", help="Only papers with (or without) code.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per paper, implementations nested.")] = False,
) -> None:
    """The registry: one row per implementation, with its last known status."""
    from awrepro.commands import list as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.cache_dir, section=section, tags=tag or [], has_code=has_code, as_json=as_json))


@app.command()
def show(
    ctx: typer.Context,
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="A paper id, or PAPER/IMPL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Everything about one entry: paper, code, environment, smoke test, last runs."""
    from awrepro.commands import show as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.cache_dir, entry_id, as_json=as_json))


@app.command()
def validate(ctx: typer.Context) -> None:
    """Check the registry without touching the network; list every problem (exit 2 on any)."""
    from awrepro.commands import validate as command

    _exit(command.run(_settings(ctx).registry))


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app and map every outcome to an exit code.

    typer prints usage errors itself (exit 2) and turns Ctrl-C into exit 130; awrepro's
    own errors become one red line each; anything else is a bug (exit 3).
    """
    from awrepro import console

    try:
        app(args=argv, prog_name="awrepro")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED
    except AwreproError as exc:
        for line in exc.lines():
            console.error(line)
        if exc.hint:
            console.info(exc.hint)
        return exc.exit_code
    except Exception:
        return _internal_error()
    return 0


def _internal_error() -> int:
    """An unexpected exception: one line for the user, the traceback in the cache's log file."""
    import traceback

    from awrepro import console
    from awrepro.logfile import write_crash_log

    summary = traceback.format_exception_only(*sys.exc_info()[:2])[-1].strip()
    where = write_crash_log(traceback.format_exc())
    console.error(f"awrepro hit an internal error: {summary}")
    console.info(f"The traceback is in {where}; please attach it to a bug report." if where else "Run with -v for details.")
    return EXIT_INTERNAL
