"""The command line: wiring only. Each command's work lives in ``awrepro.commands``.

This is the one place that turns errors into messages and exit codes. Heavy modules
(pydantic, httpx, rich tables) are imported inside the commands that need them, so
``awrepro --help`` starts as fast as a bare typer program.
"""

# No `from __future__ import annotations` here: typer would then evaluate every string
# annotation at start-up (about 5 ms for this app), on every command.
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from awrepro import __version__
from awrepro.constants import ENV_ALLOW_FILE, ENV_MIRROR, EXIT_CLOSED_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from awrepro.errors import AwreproError

if TYPE_CHECKING:  # imported lazily where they are used: start-up stays light
    from collections.abc import Callable

    from awrepro.cache import Cache
    from awrepro.registry import Entry, LoadedRegistry
    from awrepro.runner import Options
    from awrepro.selection import Filters
    from awrepro.settings_file import FileSettings

app = typer.Typer(
    name="awrepro",
    help="Does the code behind a paper still run? Fetch, set up and smoke-test every entry of a registry.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; entry ids complete from the registry
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Plain help, as git and pip print it: typer's rich help imports rich.markdown and
    # markdown-it (about 50 ms) on every --help and every usage error.
    rich_markup_mode=None,
)


@dataclass
class Settings:
    """Global options, handed to every command through the click context."""

    registry: Optional[Path]
    cache_dir: Optional[Path]
    _file: "Optional[FileSettings]" = None

    def file(self) -> "FileSettings":
        """Defaults from awrepro.toml beside the registry (below environment variables and flags)."""
        if self._file is None:
            from awrepro import registry, settings_file

            self._file = settings_file.load(registry.discover(self.registry, os.environ, Path.cwd()))
        return self._file

    def pick(self, name: str, given: Any) -> Any:
        """An option's value: the flag's or its variable's when given, else the settings file's."""
        return given if given is not None else getattr(self.file(), name)

    def results_db(self, given: Optional[Path]) -> Path:
        return self.pick("db", given) or self.cache().results_db

    def load_registry(self, memo: bool = True) -> "LoadedRegistry":
        """``memo``: keep the validated registry in the cache (a dry run writes nothing there; a
        read-only cache only lends the memo it has)."""
        from awrepro import registry
        from awrepro.cache import Cache, resolve_root

        path = registry.discover(self.registry, os.environ, Path.cwd())
        cache = Cache(resolve_root(self.cache_dir, os.environ))
        keep = memo and cache.writable()
        loaded = registry.load(path, cache_root=cache.root if memo else None, keep_memo=keep)
        if keep:
            cache.remember_registry(loaded.path)  # gc under any registry keeps what this one needs
        return loaded

    def editable_registry(self) -> Path:
        """The registry file a command may change: never the copy shipped inside awrepro."""
        from awrepro import registry
        from awrepro.constants import REGISTRY_FILENAME

        path = registry.discover(self.registry, os.environ, Path.cwd())
        return Path(REGISTRY_FILENAME) if path == registry.shipped_registry() and self.registry is None else path

    def cache(self) -> "Cache":
        from awrepro.cache import Cache
        from awrepro.errors import UsageError

        cache = Cache.open(self.cache_dir, os.environ)
        if cache.root.exists() and not cache.root.is_dir():
            raise UsageError(f"cache folder {cache.root} is a file; give another --cache-dir")
        return cache


def _version(value: bool) -> None:
    if value:
        print(f"awrepro {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    registry: Annotated[Optional[Path], typer.Option("--registry", metavar="PATH", help="Registry file (else $AWREPRO_REGISTRY, else ./registry.toml or a parent's, else the shipped one).", show_default=False)] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", metavar="PATH", help="Cache folder (else $AWREPRO_CACHE_DIR, else the user cache folder).", show_default=False)] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More output.", show_default=False)] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Less output (check: only failures and the summary).", show_default=False)] = 0,
    color: Annotated[str, typer.Option("--color", metavar="auto|always|never", help="Colour: auto follows the terminal, NO_COLOR and FORCE_COLOR.")] = "auto",
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    from awrepro import console, logfile
    from awrepro.errors import UsageError

    if color not in console.COLOR_MODES:
        raise UsageError(f"--color {color!r}: use auto, always or never")
    console.set_color(color)
    console.set_verbosity(verbose - quiet)
    logfile.remember_cache_dir(cache_dir)
    ctx.obj = Settings(registry=registry, cache_dir=cache_dir)



# Shell completion: the registry is read only when the shell asks (see completion.py).
def _complete_ids(ctx: typer.Context, incomplete: str) -> list[str]:
    from awrepro import completion

    return completion.entry_ids(ctx.find_root().params, incomplete)


def _complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    from awrepro import completion

    return completion.tags(ctx.find_root().params, incomplete)


def _complete_sections(ctx: typer.Context, incomplete: str) -> list[str]:
    from awrepro import completion

    return completion.sections(ctx.find_root().params, incomplete)


EntryArg = Annotated[str, typer.Argument(metavar="ID", help="A paper id, or PAPER/IMPL.", autocompletion=_complete_ids)]
IdsArg = Annotated[Optional[list[str]], typer.Argument(metavar="[ID]...", help="Paper ids (primary implementation), PAPER/IMPL, or PAPER/* for all of a paper's.", show_default=False, autocompletion=_complete_ids)]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry of the registry.")]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", envvar="AWREPRO_JOBS", min=1, metavar="N", help="Entries worked on at once [default: number of CPUs].", show_default=False)]
MirrorOpt = Annotated[Optional[Path], typer.Option("--mirror", envvar=ENV_MIRROR, metavar="DIR", help="Take all code from this offline mirror folder (made by `awrepro mirror`); never use the network.", show_default=False)]
DbOpt = Annotated[Optional[Path], typer.Option("--db", envvar="AWREPRO_DB", metavar="PATH", help="Results database [default: CACHE/results.db].", show_default=False)]
AllowFileOpt = Annotated[bool, typer.Option("--allow-file", envvar=ENV_ALLOW_FILE, help="Allow file:// and local-path repositories.")]


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


@app.command("list")
def list_(
    ctx: typer.Context,
    section: Annotated[Optional[str], typer.Option(metavar="NAME", help="Only papers of this section of the list.", autocompletion=_complete_sections)] = None,
    tag: Annotated[Optional[list[str]], typer.Option(metavar="TAG", help="Only papers with this tag (repeatable: all must match).", autocompletion=_complete_tags)] = None,
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
    entry_id: EntryArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Everything about one entry: paper, code, environment, smoke test, last runs."""
    from awrepro.commands import show as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.cache_dir, entry_id, as_json=as_json))


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (keys documented in the README).")]


@app.command()
def validate(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the registry without touching the network; list every problem (exit 2 on any)."""
    from awrepro.commands import validate as command

    _exit(command.run(_settings(ctx).registry, as_json=as_json))


TagOpt = Annotated[Optional[list[str]], typer.Option("--tag", metavar="TAG", help="Only entries of papers with this tag (repeatable: all must match).", show_default=False, autocompletion=_complete_tags)]
SectionOpt = Annotated[Optional[str], typer.Option("--section", metavar="NAME", help="Only entries of papers of this section of the list.", show_default=False, autocompletion=_complete_sections)]
ExcludeOpt = Annotated[Optional[list[str]], typer.Option("--exclude", metavar="ID", help="Leave this entry out (repeatable).", show_default=False, autocompletion=_complete_ids)]
FailedOpt = Annotated[bool, typer.Option("--failed", help="Only entries whose last recorded status is neither passed nor skipped.")]
ChangedOpt = Annotated[bool, typer.Option("--changed", help="Only entries whose spec (code, env, smoke, patches) changed since their last recorded run, or that never ran.")]


def _filters(section: Optional[str], tag: Optional[list[str]], exclude: Optional[list[str]], failed: bool,
             changed: bool) -> "Filters":
    from awrepro.selection import Filters

    return Filters(section=section, tags=tuple(tag or ()), exclude=tuple(exclude or ()), failed=failed, changed=changed)


def _selected(settings: Settings, ids: Optional[list[str]], all_: bool, filters: "Optional[Filters]" = None,
              db: Optional[Path] = None, dry_run: bool = False) -> "tuple[LoadedRegistry, list[Entry]]":
    from awrepro.selection import Filters, choose

    loaded = settings.load_registry(memo=not dry_run)
    filters = filters or Filters()
    if filters.need_history and db is None:
        db = settings.results_db(db)
    return loaded, choose(loaded, ids or [], all_, filters, db)


DryRunOpt = Annotated[bool, typer.Option("--dry-run", "-n", help="Print the plan, one line per entry; fetch, build and run nothing.")]


def _plan(settings: Settings, loaded: "LoadedRegistry", entries: "list[Entry]", options: "Options", upto: str) -> None:
    """--dry-run: read the cache without its lock (taking it would write the lock file)."""
    from awrepro import plan

    _exit(plan.run(loaded, settings.cache(), entries, options, upto))


def _with_cache(settings: Settings, run: "Callable[[Cache], int]") -> None:
    """Run a command that builds or uses cache entries, holding the cache's shared lock (gc waits)."""
    cache = settings.cache()
    with cache.in_use():
        _exit(run(cache))


def _jobs(jobs: Optional[int]) -> int:
    return jobs or os.cpu_count() or 1


@app.command()
def fetch(
    ctx: typer.Context,
    ids: IdsArg = None,
    all_: AllOpt = False,
    dest: Annotated[Optional[Path], typer.Option("--dest", metavar="DIR", help="Also make a working copy of your own here (one entry: DEST itself; several: DEST/ID).", show_default=False)] = None,
    jobs: JobsOpt = None,
    mirror: MirrorOpt = None,
    allow_file: AllowFileOpt = False,
    verify: Annotated[bool, typer.Option("--verify", help="Also check that no tracked file of a cached checkout changed; rebuild it if one did.")] = False,
    tag: TagOpt = None,
    section: SectionOpt = None,
    exclude: ExcludeOpt = None,
    failed: FailedOpt = False,
    changed: ChangedOpt = False,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Bring each entry's code into the cache at exactly its pinned commit, and print where it is."""
    from awrepro.commands import fetch as command
    from awrepro.sources import FetchOptions

    settings = _settings(ctx)
    loaded, entries = _selected(settings, ids, all_, _filters(section, tag, exclude, failed, changed), db, dry_run)
    options = FetchOptions(mirror_dir=settings.pick("mirror", mirror), allow_file=allow_file, verify=verify)
    if dry_run:
        from awrepro.runner import Options

        return _plan(settings, loaded, entries, Options(fetch=options), "fetch")
    _with_cache(settings, lambda cache: command.run(loaded, cache, entries, dest=dest, jobs=_jobs(settings.pick("jobs", jobs)), options=options))


@app.command()
def mirror(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write the mirrors into.")],
    ids: IdsArg = None,
    all_: AllOpt = False,
    allow_file: AllowFileOpt = False,
) -> None:
    """Write bare mirrors of the entries' repositories (and their archives) into DIR, for offline machines."""
    from awrepro.commands import mirror as command

    settings = _settings(ctx)
    loaded, entries = _selected(settings, ids, all_)
    _with_cache(settings, lambda cache: command.run(loaded, cache, entries, folder, allow_file=allow_file,
                                                    named=not all_))


@app.command()
def new(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="The repository (git URL).")],
    commit: Annotated[Optional[str], typer.Option("--commit", metavar="SHA", help="Pin this commit (else the default branch's head).", show_default=False)] = None,
    subdir: Annotated[Optional[str], typer.Option("--subdir", metavar="DIR", help="The implementation's folder in the repository.", show_default=False)] = None,
    paper: Annotated[Optional[str], typer.Option("--paper", metavar="ID", help="Add an implementation to this paper of the registry.", show_default=False)] = None,
    entry_id: Annotated[Optional[str], typer.Option("--id", metavar="ID", help="The new paper's id (else the repository's name).", show_default=False)] = None,
    into: Annotated[Optional[Path], typer.Option("--into", metavar="PATH", help="The registry file to write (else the current registry; created if missing).", show_default=False)] = None,
    max_tries: Annotated[int, typer.Option("--max-tries", metavar="N", help="At most N builds and smoke runs.")] = 8,
) -> None:
    """Infer a registry entry from a repository: analyse, build, smoke-test, repair, write."""
    from awrepro.commands import new as command

    from awrepro.errors import UsageError

    settings = _settings(ctx)
    if paper and entry_id:
        raise UsageError("give --paper ID or --id ID, not both")
    target = into or command.default_into(settings.registry)
    request = command.Request(url, commit, subdir, paper, entry_id, target, max_tries)
    _with_cache(settings, lambda cache: command.run(request, cache))


@app.command()
def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Only list what would be removed.")] = False,
    only_this_registry: Annotated[bool, typer.Option("--only-this-registry", help="Keep only what this registry needs: what other registries that used the cache need goes too.")] = False,
    log_days: Annotated[int, typer.Option("--log-days", min=0, metavar="DAYS", help="Remove run logs older than this.")] = 30,
) -> None:
    """Remove what no registry that uses the cache needs (mirrors, checkouts, archives, environments),
    leftovers of killed fetches, and old run logs."""
    from awrepro.commands import gc as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(memo=not dry_run), settings.cache(), dry_run=dry_run,
                      only_this_registry=only_this_registry, log_days=log_days))


@app.command("cache")
def cache_info(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Where the cache is, and its size by kind."""
    from awrepro.commands import cache_info as command

    _exit(command.run(_settings(ctx).cache(), as_json=as_json))


BackendOpt = Annotated[Optional[str], typer.Option("--backend", metavar="uv|pip", help="Environment backend for every entry: uv or pip [default: the registry's, uv].", show_default=False)]


def _runner_options(settings: Settings, mirror: Optional[Path], allow_file: bool, backend: Optional[str], gpu: bool = False,
                    timeout: Optional[int] = None, executor: str = "local", network: bool = True) -> "Options":
    from awrepro.errors import UsageError
    from awrepro.runner import Options
    from awrepro.sources import FetchOptions

    if backend not in (None, "uv", "pip"):
        raise UsageError(f"--backend {backend!r}: use uv or pip")
    return Options(fetch=FetchOptions(mirror_dir=settings.pick("mirror", mirror), allow_file=allow_file), backend=backend,
                   gpu=gpu, timeout=settings.pick("timeout", timeout), executor=executor,
                   network=network)


@app.command()
def setup(
    ctx: typer.Context,
    ids: IdsArg = None,
    all_: AllOpt = False,
    jobs: JobsOpt = None,
    backend: BackendOpt = None,
    mirror: MirrorOpt = None,
    allow_file: AllowFileOpt = False,
    tag: TagOpt = None,
    section: SectionOpt = None,
    exclude: ExcludeOpt = None,
    failed: FailedOpt = False,
    changed: ChangedOpt = False,
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Build (or reuse) each entry's environment, after fetching its code; print where it is."""
    from awrepro.commands import setup as command

    settings = _settings(ctx)
    loaded, entries = _selected(settings, ids, all_, _filters(section, tag, exclude, failed, changed), db, dry_run)
    options = _runner_options(settings, mirror, allow_file, backend)
    if dry_run:
        return _plan(settings, loaded, entries, options, "setup")
    _with_cache(settings, lambda cache: command.run(loaded, cache, entries, jobs=_jobs(settings.pick("jobs", jobs)), options=options))


# Options may follow the id (`run ID --pass-env NAME -- CMD`); everything after `--` is the command.
@app.command()
def run(
    ctx: typer.Context,
    entry_id: EntryArg,
    command_args: Annotated[Optional[list[str]], typer.Argument(metavar="-- CMD...", help="The command to run.", show_default=False)] = None,
    backend: BackendOpt = None,
    mirror: MirrorOpt = None,
    allow_file: AllowFileOpt = False,
    pass_env: Annotated[Optional[list[str]], typer.Option("--pass-env", metavar="NAME", help="Pass this variable of yours to the command (repeatable); others stay out.", show_default=False)] = None,
) -> None:
    """Run any command in the entry's checkout with its environment active; exits with its code."""
    from awrepro.commands import run as command

    settings = _settings(ctx)
    loaded = settings.load_registry()
    entry = loaded.select([entry_id])[0]
    options = _runner_options(settings, mirror, allow_file, backend)
    _with_cache(settings, lambda cache: command.run(loaded, cache, entry, command_args or [], options=options,
                                                    pass_env=pass_env or []))


@app.command()
def check(
    ctx: typer.Context,
    ids: IdsArg = None,
    all_: AllOpt = False,
    jobs: JobsOpt = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", envvar="AWREPRO_JSON", metavar="PATH", help="Write the JSON report here.", show_default=False)] = None,
    junit_path: Annotated[Optional[Path], typer.Option("--junit", envvar="AWREPRO_JUNIT", metavar="PATH", help="Write a JUnit XML report here.", show_default=False)] = None,
    markdown_path: Annotated[Optional[Path], typer.Option("--markdown", envvar="AWREPRO_MARKDOWN", metavar="PATH", help="Write a Markdown summary here.", show_default=False)] = None,
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", envvar="AWREPRO_FAIL_ON", metavar="any|regression|never", help="Exit 1 on: any (a failure), regression (a failure of an entry that passed its previous run), never [default: any].", show_default=False)] = None,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="K/N", help="Run only shard K of N (balanced by recorded durations).", show_default=False)] = None,
    timeout: Annotated[Optional[int], typer.Option("--timeout", envvar="AWREPRO_TIMEOUT", min=1, metavar="SECONDS", help="Smoke-test timeout in seconds for every entry (overrides the registry).", show_default=False)] = None,
    gpu: Annotated[bool, typer.Option("--gpu", help="Run entries that need a GPU (when one is present; with --executor slurm: on nodes with --gres=gpu:1).")] = False,
    no_network: Annotated[bool, typer.Option("--no-network", help="Cut the network for every smoke test (with bubblewrap).")] = False,
    db: DbOpt = None,
    backend: BackendOpt = None,
    mirror: MirrorOpt = None,
    allow_file: AllowFileOpt = False,
    tag: TagOpt = None,
    section: SectionOpt = None,
    exclude: ExcludeOpt = None,
    failed: FailedOpt = False,
    changed: ChangedOpt = False,
    dry_run: DryRunOpt = False,
    smoke_command: Annotated[Optional[str], typer.Option("--smoke-command", metavar="CMD", help="Try this smoke test (a shell command) on the one entry named, instead of the registry's.", show_default=False)] = None,
    smoke_script: Annotated[Optional[Path], typer.Option("--smoke-script", metavar="FILE", help="Try this Python file as the smoke test of the one entry named.", show_default=False)] = None,
    executor: Annotated[str, typer.Option("--executor", metavar="local|slurm", help="Where smoke tests run: here, or as a Slurm job array (code and environments are still prepared here, in a cache the nodes share).")] = "local",
    partition: Annotated[Optional[str], typer.Option("--partition", metavar="P", help="With --executor slurm: the partition to submit to.", show_default=False)] = None,
    sbatch_args: Annotated[Optional[list[str]], typer.Option("--sbatch-arg", metavar="ARG", help="With --executor slurm: one more sbatch argument, e.g. --sbatch-arg=--account=lab (repeatable).", show_default=False)] = None,
) -> None:
    """Fetch, set up and smoke-test entries in parallel; print a table, write reports, record history."""
    from awrepro.commands import check as command
    from awrepro.errors import UsageError
    from awrepro.report_files import Reports
    from awrepro.schedule import parse_shard

    settings = _settings(ctx)
    fail_on = settings.pick("fail_on", fail_on) or "any"
    if fail_on not in ("any", "regression", "never"):
        raise UsageError(f"--fail-on {fail_on!r}: use any, regression or never")
    json_path, junit_path, markdown_path = (settings.pick(name, given) for name, given in
                                            (("json", json_path), ("junit", junit_path), ("markdown", markdown_path)))
    shard_spec = parse_shard(shard) if shard else None
    if shard_spec and ids:
        raise UsageError("--shard splits --all; give no entry ids with it")
    loaded, entries = _selected(settings, ids, all_ or bool(shard_spec), _filters(section, tag, exclude, failed, changed),
                                db, dry_run)
    if smoke_command is not None or smoke_script is not None:
        entries = command.with_trial_smoke(entries, smoke_command, smoke_script)
    slurm_options = command.slurm_options(executor, partition, sbatch_args)
    options = _runner_options(settings, mirror, allow_file, backend, gpu, timeout, executor, network=not no_network)
    if dry_run:
        if shard_spec:
            from awrepro import history, schedule

            recorded = history.latest(settings.results_db(db))
            entries = schedule.shard(entries, *shard_spec, {k: r.duration for k, r in recorded.items()})
        return _plan(settings, loaded, entries, options, "check")
    reports = Reports(json_path, junit_path, markdown_path)
    from awrepro.report_files import check_writable

    for option, path in (("--json", json_path), ("--junit", junit_path), ("--markdown", markdown_path)):
        if path is not None:
            check_writable(path, option)
    _with_cache(settings, lambda cache: command.run(loaded, cache, entries, jobs=_jobs(settings.pick("jobs", jobs)),
                                                    options=options, db=settings.results_db(db), reports=reports, fail_on=fail_on,
                                                    shard=shard_spec, slurm=slurm_options))


@app.command()
def status(ctx: typer.Context, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Every entry's latest status, since when it has had it, and regressions or fixes."""
    from awrepro.commands import status as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.results_db(db), as_json=as_json))


@app.command()
def history(
    ctx: typer.Context,
    entry_id: EntryArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, metavar="N", help="How many runs to show.")] = 20,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An entry's recorded runs, newest first."""
    from awrepro.commands import status as command

    settings = _settings(ctx)
    _exit(command.run_history(settings.load_registry(), settings.results_db(db), entry_id, limit,
                              as_json=as_json))


@app.command()
def log(
    ctx: typer.Context,
    entry_id: EntryArg,
    stage: Annotated[Optional[str], typer.Option("--stage", metavar="fetch|setup|smoke", help="Show this stage's log [default: the failing stage's, else the last one's].", show_default=False)] = None,
    run_id: Annotated[Optional[int], typer.Option("--run", min=1, metavar="N", help="That run (see `awrepro history ID`) [default: the latest].", show_default=False)] = None,
    whole: Annotated[bool, typer.Option("--all", help="The whole log, not only its tail.")] = False,
    db: DbOpt = None,
) -> None:
    """An entry's last run: stage, status, note, the path of each log, and the failing log's tail."""
    from awrepro.commands import log as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.results_db(db), entry_id, stage=stage,
                      run_id=run_id, whole=whole))


@app.command("import")
def import_(
    ctx: typer.Context,
    list_path: Annotated[Path, typer.Argument(metavar="LIST.md", help="An awesome-list in Markdown.")],
    into: Annotated[Optional[Path], typer.Option("--into", metavar="PATH", help="Registry file to add to (made when missing) [default: --registry, else ./registry.toml or a parent's].", show_default=False)] = None,
    update: Annotated[bool, typer.Option("--update", help="Also refresh the paper metadata (title, venue, year, links, section, summary) of papers already there.")] = False,
    allow_file: AllowFileOpt = False,
) -> None:
    """Add an awesome-list's papers to the registry as drafts, each repository pinned to its default branch."""
    from awrepro.commands import import_list as command

    _exit(command.run(list_path, into or _settings(ctx).editable_registry(), update=update, allow_file=allow_file))


@app.command()
def links(
    ctx: typer.Context,
    ids: IdsArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON report instead of the table.")] = False,
    markdown_path: Annotated[Optional[Path], typer.Option("--markdown", metavar="FILE", help="Also write a Markdown table here.", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, metavar="SECONDS", help="Per request.")] = 15.0,
    budget: Annotated[float, typer.Option("--budget", min=1, metavar="SECONDS", help="For the whole run: no request starts and no retry waits after it.")] = 300.0,
    ttl: Annotated[float, typer.Option("--ttl", min=0, metavar="SECONDS", help="How long a good result is trusted (0: ask again).")] = 86400.0,
    per_host: Annotated[int, typer.Option("--per-host", min=1, metavar="N", help="Requests at once to one host.")] = 4,
) -> None:
    """Check every URL of the registry (PDFs, arXiv, code, archives) for link rot; exit 1 when one is broken."""
    from awrepro.commands import links as command

    settings = _settings(ctx)
    loaded = settings.load_registry()
    entries = loaded.select(ids) if ids else loaded.entries()
    options = command.Settings(timeout=timeout, per_host=per_host, budget=budget, ttl=ttl)
    if markdown_path is not None:
        from awrepro.report_files import check_writable

        check_writable(markdown_path, "--markdown")
    _exit(command.run(entries, settings.cache(), options, as_json=as_json, markdown=markdown_path))


@app.command()
def outdated(
    ctx: typer.Context,
    ids: IdsArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per git entry.")] = False,
    allow_file: AllowFileOpt = False,
) -> None:
    """Compare each git entry's pin with its upstream default branch: head, age, how far behind, moved or gone."""
    from awrepro.commands import outdated as command

    loaded = _settings(ctx).load_registry()
    _exit(command.run(loaded.select(ids) if ids else loaded.entries(), as_json=as_json, allow_file=allow_file))


@app.command()
def bump(
    ctx: typer.Context,
    entry_id: EntryArg,
    to: Annotated[Optional[str], typer.Option("--to", metavar="REF", help="A branch, tag or full commit upstream [default: the default branch's head].", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Check the entry on the new pin; put the old pin back if it fails.")] = False,
    cooldown: Annotated[float, typer.Option("--cooldown", min=0, metavar="DAYS", help="Refuse a commit younger than this (0: take any).")] = 7.0,
    allow_file: AllowFileOpt = False,
) -> None:
    """Move an entry's pin to upstream's head (or --to REF) in the registry file, changing only that value."""
    from awrepro import registry
    from awrepro.commands import bump as command

    settings = _settings(ctx)
    path = settings.editable_registry()
    entry = registry.load(path).select([entry_id])[0]
    checker = None
    if check:
        cache = settings.cache()
        cache.require_writable()  # before the pin moves, not after
        checker = lambda: command.check_on_new_pin(path, entry_id, cache, allow_file=allow_file)  # noqa: E731
    _exit(command.run(path, entry, to=to, cooldown=cooldown, check=checker, allow_file=allow_file))


@app.command()
def render(
    ctx: typer.Context,
    list_path: Annotated[Path, typer.Argument(metavar="LIST.md", help="The awesome-list to write the statuses into.")],
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 when the file is out of date (for CI).")] = False,
    link: Annotated[str, typer.Option("--link", metavar="URL", help="Where each status links to.")] = "docs/registry-status.md",
    db: DbOpt = None,
) -> None:
    """Write each paper's last status after its line in the list, between markers (idempotent)."""
    from awrepro.commands import render as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), list_path, settings.results_db(db), link=link, check=check))


@app.command()
def doctor(ctx: typer.Context, mirror: MirrorOpt = None, as_json: JsonOpt = False) -> None:
    """What this machine has for awrepro: git, uv, interpreters, network or mirror, disk, GPU (exit 1 if something is missing)."""
    from awrepro.commands import doctor as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), settings.cache(), mirror=settings.pick("mirror", mirror), as_json=as_json))


report_app = typer.Typer(help="Work with check reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("merge")
def report_merge(
    reports: Annotated[list[Path], typer.Argument(metavar="REPORT.json...", help="JSON reports of `check --json` (e.g. one per shard).")],
    json_path: Annotated[Optional[Path], typer.Option("--json", metavar="PATH", help="Write the merged JSON report here.", show_default=False)] = None,
    junit_path: Annotated[Optional[Path], typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report here.", show_default=False)] = None,
    markdown_path: Annotated[Optional[Path], typer.Option("--markdown", metavar="PATH", help="Write a Markdown summary here.", show_default=False)] = None,
    fail_on: Annotated[str, typer.Option("--fail-on", metavar="any|never", help="Exit 1 on: any (a failure), never.")] = "any",
) -> None:
    """Join shard reports into one; write JSON, JUnit and Markdown from it."""
    from awrepro.commands import report_merge as command
    from awrepro.report_files import Reports

    _exit(command.run(reports, Reports(json_path, junit_path, markdown_path), fail_on))


@report_app.command("collect")
def report_collect(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="The run folder of a `check --executor slurm` (CACHE/logs/check-…).")],
) -> None:
    """Finish a Slurm run whose submitter died: wait for its jobs, record them in the history, write its reports."""
    from awrepro.commands import report_collect as command

    _exit(command.run(run_dir))


@app.command("_slurm-task", hidden=True)
def slurm_task(array_dir: Annotated[Path, typer.Argument()]) -> None:
    """One task of a Slurm job array (started by Slurm, not by people)."""
    from awrepro import process
    from awrepro.executors import slurm

    from awrepro.errors import UsageError

    index = os.environ.get("SLURM_ARRAY_TASK_ID", "")
    if not index.isdigit():
        raise UsageError("_slurm-task runs as a task of a Slurm job array (SLURM_ARRAY_TASK_ID is not set)")
    with process.interruptible():  # scancel and the time limit send SIGTERM: end the smoke test's processes too
        try:
            code = slurm.task(array_dir, int(index))
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
    _exit(code)


@report_app.command("page")
def report_page(
    ctx: typer.Context,
    cold: Annotated[Path, typer.Argument(metavar="REPORT.json", help="JSON report of a real `check --all` with a cold cache.")],
    warm: Annotated[Optional[Path], typer.Option("--warm", metavar="PATH", help="JSON report of the warm re-run.", show_default=False)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="PATH", help="Where to write the page.")] = Path("docs/registry-status.md"),
) -> None:
    """Write the registry's status page (Markdown) from a real run's report."""
    from awrepro.commands import report_page as command

    _exit(command.run(_settings(ctx).load_registry(), cold, warm, output))


@report_app.command("html")
def report_html(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write index.html into (made when missing).")],
    report: Annotated[Optional[Path], typer.Option("--report", metavar="REPORT.json", help="The last `check --json` report: time per stage and log tails.", show_default=False)] = None,
    runs: Annotated[int, typer.Option("--runs", min=1, metavar="N", help="Results per history strip.")] = 20,
    db: DbOpt = None,
) -> None:
    """Write a static dashboard (index.html, no network needed) of every entry with its history."""
    from awrepro.commands import report_html as command

    settings = _settings(ctx)
    _exit(command.run(settings.load_registry(), folder, settings.results_db(db), report, runs=runs))


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point: run the app and map every outcome to an exit code.

    typer prints usage errors itself (exit 2) and turns Ctrl-C into exit 130; awrepro's
    own errors become one red line each; anything else is a bug (exit 3).
    """
    from awrepro.console import ClosedPipe

    try:
        code = _run(argv)
        sys.stdout.flush()
    except (ClosedPipe, BrokenPipeError):
        return _quiet_closed_pipe()
    return code


def _run(argv: Optional[list[str]]) -> int:
    from awrepro import console

    try:
        app(args=argv, prog_name="awrepro")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        console.error("interrupted")
        return EXIT_INTERRUPTED
    except console.ClosedPipe:
        raise
    except AwreproError as exc:
        for line in exc.lines():
            console.error(line)
        if exc.hint:
            console.info(exc.hint)
        return exc.exit_code
    except Exception:
        return _internal_error()
    return 0


def _quiet_closed_pipe() -> int:
    """End quietly, as Unix tools killed by SIGPIPE do: what is still buffered goes nowhere
    (not into a traceback at exit), and the exit code says so without claiming a failed check."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    os.close(devnull)
    return EXIT_CLOSED_PIPE


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
