"""``awrepro new URL``: a working registry entry from a repository, found by a bounded loop of tries.

Fetch (awrepro's own fetch: mirrors and ``insteadOf`` work) → analyse without running the code →
requirements and a date-bounded strategy → build and run a probe smoke test → on failure read
the error and repair one thing → ... at most ``--max-tries`` builds. Then the entry is written
with a forward-pass smoke test when the probe found one that runs, else an import-level one;
every repair is one line of its ``notes``, and the last note says the level reached or why it
stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from awrepro import console, envs, fetching, git, registry, runner, sources
from awrepro.cache import Cache
from awrepro.constants import EXIT_FAILED, EXIT_OK
from awrepro.envs.base import user_pip_settings
from awrepro.errors import FetchError, UsageError
from awrepro.infer import analysis as analysis_mod
from awrepro.infer import entry as entry_mod
from awrepro.infer import repair as repair_mod
from awrepro.infer import resolve, smoke
from awrepro.infer.names import TORCH_FAMILY
from awrepro.model import GitCode, Implementation, SmokeSpec
from awrepro.results import Result

PYTHON = "==3.11.*"  # the interpreter the local torch wheel is built for
SMOKE_TIMEOUT = 600
# The checkout is read-only to checks (the sandbox): bytecode goes to the check's own TMPDIR.
COMPILE_ALL = 'python -X pycache_prefix="$TMPDIR/pycache" -m compileall -q .'


@dataclass(frozen=True)
class Request:
    url: str
    commit: str | None
    subdir: str | None
    paper: str | None
    entry_id: str | None
    into: Path
    max_tries: int


@dataclass
class Outcome:
    level: str | None  # "smoke", "import", or None when it stopped
    stopped: str  # why it stopped ("" when a level was reached)
    tries: int


def run(request: Request, cache: Cache) -> int:
    _check_request(request)
    if request.into.is_file():  # a registry that cannot take the entry fails now, not after the builds
        registry.load(request.into)
    commit = request.commit or _default_head(request.url)
    # An implementation in a folder of a monorepo: only its top folder first (a partial clone),
    # then the other top folders its code imports from.
    sparse = (request.subdir.split("/")[0],) if request.subdir else ()
    code = GitCode(request.url, commit, subdir=request.subdir, sparse=sparse)
    if sparse:
        code = code._replace(sparse=_without_test_data(cache, code, sparse))
    impl = Implementation(code=code, smoke=SmokeSpec(command="true"))
    with tempfile.TemporaryDirectory(prefix="awrepro-new-") as scratch_dir:
        scratch = Path(scratch_dir)
        checkout = fetching.ensure(cache, impl, scratch, sources.FetchOptions())
        repo_name = impl.code.repo_name
        paper_id = request.paper or request.entry_id or entry_mod.slug(repo_name)
        impl_name = entry_mod.slug(_owner(request.url)) if request.paper else "main"
        console.info(f"{paper_id}  fetched {impl.code.short()}; analysing")
        found = analysis_mod.analyse(checkout.tree, request.subdir or "")
        if sparse and (more := _imported_top_folders(found, checkout.tree) - set(sparse)):
            code = code._replace(sparse=_without_test_data(cache, code, (*sparse, *sorted(more))))
            impl = impl._replace(code=code)
            console.info(f"{paper_id}  its code imports {', '.join(sorted(more))}: fetched too")
            checkout = fetching.ensure(cache, impl, scratch, sources.FetchOptions())
            found = analysis_mod.analyse(checkout.tree, request.subdir or "")
        committed = _commit_date(checkout.root)
        candidate = _first_candidate(found, repo_name, committed)
        if left_out := [p[1:] for p in code.sparse if p.startswith("!")]:
            candidate.notes.append(f"the sparse checkout leaves out test data, which the model code does not import: "
                                   f"{', '.join(left_out)}")
        patch_dir = f"patches/{paper_id}"
        outcome = _loop(request, cache, impl, candidate, found, checkout.root, scratch, paper_id, patch_dir)
        data = _impl_table(impl, candidate, outcome, found, patch_dir)
        title = found.readme_title or repo_name
        paper = None if request.paper else entry_mod.paper_table(title, committed.year)
        text = request.into.read_text(encoding="utf-8") if request.into.is_file() else ""
        updated = entry_mod.insert(text, paper_id, impl_name, data, paper)
        entry_mod.write(request.into, updated, candidate.patches, patch_dir)
    where = f"papers.{paper_id}" + (f".impl.{impl_name}" if request.paper else "")
    if outcome.level:
        console.print_plain(f"{paper_id}  reached {outcome.level} in {outcome.tries} tries; wrote {where} to {request.into}")
        return EXIT_OK
    console.print_plain(f"{paper_id}  stopped after {outcome.tries} tries: {outcome.stopped}; wrote {where} to {request.into}")
    return EXIT_FAILED


def default_into(explicit: Path | None) -> Path:
    """The registry in use, unless that is the copy shipped inside awrepro: then ./registry.toml."""
    import os

    path = registry.discover(explicit, os.environ, Path.cwd())
    return Path("registry.toml") if path == registry.shipped_registry() else path


def _check_request(request: Request) -> None:
    from pydantic import ValidationError

    from awrepro import schema

    try:
        given = {"git": request.url, "commit": request.commit or "0" * 40, "subdir": request.subdir}
        schema.Code.model_validate({key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"awrepro new: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for value, what in ((request.paper, "--paper"), (request.entry_id, "--id")):
        if value is not None and not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value):
            raise UsageError(f"{what} {value!r}: use lowercase letters and digits, joined by single '-'")
    if request.max_tries < 1:
        raise UsageError("--max-tries must be at least 1")


def _default_head(url: str) -> str:
    # HEAD, else (a server whose HEAD names no branch) main or master.
    wanted = ("HEAD", "refs/heads/main", "refs/heads/master")
    done = git.ls_remote(url, *wanted, timeout=120)
    if not done.ok:
        raise FetchError(git.upstream_failure(url, done))
    refs: dict[str, str] = {}
    for line in done.output.splitlines():
        sha, _, ref = line.partition("\t")
        if re.fullmatch(r"[0-9a-f]{40}", sha):
            refs[ref] = sha
    head = next((refs[ref] for ref in wanted if ref in refs), None)
    if head is None:
        raise FetchError(f"{url}: no default branch to pin (HEAD, main, master); give --commit SHA")
    return head


TEST_DATA_FOLDERS = ("testdata", "test_data", "test-data")


def _without_test_data(cache: Cache, code: GitCode, folders: tuple[str, ...]) -> tuple[str, ...]:
    """The sparse folders, less the test-data folders inside them (fixtures and data files: often
    the largest files of a repository, never imported). The commit's trees tell, before any of
    the folders' files is fetched."""
    from awrepro import checkouts

    assert code.subdir is not None
    mirror = checkouts.ensure_commit(cache, code._replace(sparse=(code.subdir,)), sources.FetchOptions())
    listed = git.checked(["ls-tree", "-r", "-d", "--name-only", code.commit, "--", *folders], what="git ls-tree",
                         cwd=mirror, whole_output=True).split("\n")
    excluded: list[str] = []
    for path in sorted(p for p in listed if p.rsplit("/", 1)[-1] in TEST_DATA_FOLDERS):
        if not any(path.startswith(f"{done}/") for done in excluded) and code.subdir != path and not code.subdir.startswith(f"{path}/"):
            excluded.append(path)
    return (*folders, *(f"!{path}" for path in excluded))


def _imported_top_folders(found: analysis_mod.Analysis, tree: Path) -> set[str]:
    """Top-level folders of the repository (left out of a sparse checkout) that the model code imports."""
    listed = git.checked(["ls-tree", "--name-only", "-d", "HEAD"], what="git ls-tree", cwd=tree).split()
    modules = found.model_modules() or found.framework_modules()
    wanted = {top for m in found.closure(modules) for top in m.third_party}
    return {name for name in listed if name in wanted}


def _owner(url: str) -> str:
    parts = re.split(r"[/:]", re.sub(r"\.git$", "", url.rstrip("/")))
    return parts[-2] if len(parts) >= 2 else "code"


def _commit_date(root: Path) -> datetime:
    return git.commit_time(root)


def _first_candidate(found: analysis_mod.Analysis, repo_name: str, committed: datetime) -> repair_mod.Candidate:
    settings = user_pip_settings()
    torch = resolve.torch_pin(settings.find_links) or "torch==2.13.0"
    modules = found.model_modules() or found.framework_modules()
    requirements = resolve.requirements_for(found, modules, torch, resolve.own_names(found, repo_name))
    candidate = repair_mod.Candidate(requirements, {m.name: [(c.name, c.required_args) for c in m.classes] for m in modules})
    focus = found.focus or "."
    roots = sorted({os.path.relpath(m.root or ".", focus) for m in found.closure(modules)} - {"."})
    candidate.pythonpath += [f"{{checkout}}/{root}" for root in roots]
    if roots:
        candidate.notes.append(f"PYTHONPATH gets {', '.join(roots)} (relative to the code's folder): the model code "
                               "imports from there")
    _native(found, modules, candidate)
    _cuda(found, modules, candidate)
    index_urls = [u for u in (settings.index_url or "https://pypi.org/simple", *settings.extra_index_urls) if u]
    candidate.cutoff, candidate.index_urls = committed, index_urls
    names = {resolve.requirement_name(line) for line in requirements.lines[1:]} | _needed_today(requirements.lines)
    names -= TORCH_FAMILY
    for name, (when, version) in resolve.forward_dates(names, committed, index_urls).items():
        candidate.exempt[name] = when
        candidate.notes.append(f"{name}: its release at the commit's date has no wheel for this Python; "
                               f"moved forward to {version} ({when}), the first that has one")
    return candidate


def _needed_today(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, resolved with today's releases (wheels: quick).

    What they pull in as of the commit's date is mostly the same set; its compiled members then
    move forward before the first build instead of failing one build each.
    """
    from awrepro import interpreters, process
    from awrepro.envs import dates, uv

    interpreter = interpreters.find(PYTHON)
    if interpreter is None:
        return set()
    cmd = [uv.uv_binary(), "pip", "compile", "-", "--quiet", "--no-header", "--no-annotate", "--no-python-downloads",
           "--python", str(interpreter.path), *user_pip_settings().as_args()]
    environ = process.scrubbed_environ(allow=process.INSTALL_ALLOWLIST, prefixes=process.INSTALL_PREFIXES)
    done = process.run(cmd, env=environ, timeout=300, input_text="\n".join(requirements) + "\n", whole_output=True)
    return set(dates.parse_resolution(done.output)) if done.ok else set()


def _native(found: analysis_mod.Analysis, modules: list[analysis_mod.Module], candidate: repair_mod.Candidate) -> None:
    for folder in found.needed_extensions(modules):
        where = os.path.relpath(folder, found.focus or ".")  # steps run in the code's folder
        prefix = "" if where == "." else f"cd {where} && "
        candidate.steps.append(f"{prefix}python setup.py build_ext --inplace")
        setup_text = (found.root / folder / "setup.py").read_text(errors="replace")
        for dist in ("setuptools", *(["cython"] if found.pyx or "Cython" in setup_text else []),
                     *(["numpy"] if "numpy" in setup_text else [])):
            candidate.requirements.add(dist)
        candidate.notes.append(f"native extension in {folder}: built in place (`python setup.py build_ext --inplace`)")
    cpu_torch = resolve.torch_is_cpu_build(user_pip_settings().find_links)
    for folder in found.cuda_extensions:
        buildable = bool(shutil.which("nvcc")) and not cpu_torch
        if buildable:
            candidate.steps.append(f"cd {os.path.relpath(folder, found.focus or '.')} && python setup.py build_ext --inplace")
            candidate.requirements.add("setuptools")
        why = "not built (the local torch wheel is a CPU build)" if cpu_torch else "not built (no nvcc here)"
        candidate.notes.append(f"CUDA extension in {folder}: " + ("built in place" if buildable else why))


def _cuda(found: analysis_mod.Analysis, modules: list[analysis_mod.Module], candidate: repair_mod.Candidate) -> None:
    closure = found.closure(modules)
    at_import = [(m.path, line) for m in closure for line in m.cuda_at_import]
    at_build = [(m.path, line) for m in modules for line in m.cuda_at_build]
    if at_import:
        candidate.gpu = True
        path, line = at_import[0]
        candidate.notes.append(f"CUDA-only code runs at import ({path}:{line}): the smoke test needs a GPU; "
                               "a static check byte-compiles the code on CPU machines")
    elif at_build:
        candidate.forward = False
        path, line = at_build[0]
        candidate.notes.append(f"the model moves itself to CUDA when built ({path}:{line}): import-level smoke test "
                               "on CPU, a forward pass needs a GPU")


# ------------------------------------------------------------------ the loop

def _loop(request: Request, cache: Cache, impl: Implementation, candidate: repair_mod.Candidate,
          found: analysis_mod.Analysis, root: Path, scratch: Path, paper_id: str, patch_dir: str) -> Outcome:
    local = found.local_top_names()
    if not candidate.modules:
        return Outcome(None, "no importable module found (no model class, no package)", 0)
    tries = 0
    while tries < request.max_tries:
        tries += 1
        script = smoke.probe_script(_probed(candidate), candidate.shims)
        result, output, ran_in = _try(cache, impl, candidate, script, scratch, paper_id, patch_dir)
        root = ran_in or root  # repairs read (and patch) the code as this try ran it: patched, built
        console.info(f"{paper_id}  try {tries}: {result.status}" + (f" at {result.failed_stage}" if result.failed_stage else "")
                    + (f": {result.note}" if result.note else ""))
        if result.status == "passed" and result.level == "static":
            candidate.final = ("import", smoke.import_script(candidate.modules, candidate.shims))
            return Outcome("static", "", tries)
        if result.status == "passed":
            _guard_torch(cache, result, candidate)
            probe = smoke.read_probe(output) or {}
            failed = smoke.probe_errors(probe) if smoke.best_forward(probe) is None else ""
            note = repair_mod.repair(candidate, "smoke", failed, root, local, drop_modules=False) if failed else None
            if note is None or tries >= request.max_tries:
                return _finish(cache, impl, candidate, output, scratch, paper_id, patch_dir, tries)
            console.info(f"{paper_id}  imports; repair for a forward pass: {note}")
            continue
        if result.status not in ("failed", "setup-error", "timeout"):
            return Outcome(None, f"{result.status} at {result.failed_stage}: {result.note}", tries)
        note = repair_mod.repair(candidate, result.failed_stage, output, root, local)
        if note is None:
            stage = result.failed_stage or "smoke"
            return Outcome(None, f"{stage}: {repair_mod.last_error(output) if output else result.note}", tries)
        console.info(f"{paper_id}  repair: {note}")
    return Outcome(None, f"--max-tries {request.max_tries} reached", tries)


def _probed(candidate: repair_mod.Candidate) -> dict[str, list[tuple[str, int]]]:
    if candidate.forward and not candidate.gpu:
        return candidate.modules
    return {name: [(c, -1) for c, _ in classes] for name, classes in candidate.modules.items()}


def _finish(cache: Cache, impl: Implementation, candidate: repair_mod.Candidate, output: str, scratch: Path,
            paper_id: str, patch_dir: str, tries: int) -> Outcome:
    """The probe passed: write the forward-pass test it found (verified), else the import-level one."""
    probe = smoke.read_probe(output) or {}
    run = smoke.best_forward(probe)
    if run is not None:
        script = smoke.forward_script(run, candidate.shims)
        result, _, _ = _try(cache, impl, candidate, script, scratch, paper_id, patch_dir, level="smoke")
        if result.status == "passed":
            candidate.final = ("smoke", script)
            return Outcome("smoke", "", tries)
    script = smoke.import_script(candidate.modules, candidate.shims)
    result, _, _ = _try(cache, impl, candidate, script, scratch, paper_id, patch_dir, level="import")
    candidate.final = ("import", script)
    if result.status == "passed":
        return Outcome("import", "", tries)
    return Outcome(None, f"the written import test failed: {result.note}", tries)


def _guard_torch(cache: Cache, result: Result, candidate: repair_mod.Candidate) -> None:
    """No environment of `new` holds a torch other than the pinned local wheel."""
    if not result.env_key:
        return
    pin = candidate.requirements.lines[0].split("==")[1]
    prefix = envs.location(cache, result.env_key)
    versions = [p.name.removesuffix(".dist-info").split("-", 1)[1].split("+")[0]
                for p in prefix.glob("lib/python*/site-packages/torch-*.dist-info")]
    if any(version != pin for version in versions):
        raise FetchError(f"the environment holds torch {versions[0]}, not the local wheel's {pin}: refusing it")


def _try(cache: Cache, impl: Implementation, candidate: repair_mod.Candidate, script: str, scratch: Path,
         paper_id: str, patch_dir: str, level: str = "import") -> tuple[Result, str, Path | None]:
    """One build + smoke run of the candidate, through the same runner as `check`; with what it
    printed and the code's folder as it ran (the patched checkout, or the environment's own copy)."""
    folder = scratch / "try"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / patch_dir).mkdir(parents=True)
    for name, body in candidate.patches.items():
        (folder / patch_dir / name).write_text(body)
    data = _impl_table(impl, candidate, None, None, patch_dir, script=script, level=level)
    text = entry_mod.insert("", paper_id, "main", data, entry_mod.paper_table(paper_id, 2000))
    path = folder / "registry.toml"
    path.write_text(text)
    loaded = registry.load(path)
    [entry] = loaded.entries()
    result = runner.check_entry(entry, loaded, cache, runner.Options(), cache.new_log_folder("new"))
    logs = [Path(s.log_path) for s in result.stages if s.name in ("setup", "smoke")]
    output = "".join(p.read_text(encoding="utf-8", errors="replace") for p in logs if p.is_file())
    return result, f"{result.note}\n{output}{_installed(cache, result)}", _ran_in(cache, entry.impl, folder, result)


def _ran_in(cache: Cache, impl: Implementation | None, registry_root: Path, result: Result) -> Path | None:
    if impl is None or result.failed_stage == "fetch":
        return None
    checkout = fetching.ensure(cache, impl, registry_root, sources.FetchOptions())  # cached: no git runs
    if not impl.env.steps or not result.env_key:
        return checkout.root
    copy = envs.location(cache, result.env_key) / envs.COPY_FOLDER / checkout.tree.name  # where steps built
    return copy / checkout.root.relative_to(checkout.tree)


def _installed(cache: Cache, result: Result) -> str:
    """What the environment holds, as uv lists it (`` + name==version``): a reused one logs no install."""
    if not result.env_key:
        return ""
    lines = []
    for info in sorted(envs.location(cache, result.env_key).glob("lib/python*/site-packages/*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        lines.append(f" + {resolve.normalize(name)}=={version}\n")
    return "".join(lines)


def _impl_table(impl: Implementation, candidate: repair_mod.Candidate, outcome: Outcome | None,
                found: analysis_mod.Analysis | None, patch_dir: str, *, script: str | None = None,
                level: str = "import") -> dict[str, Any]:
    if script is None:
        level, script = candidate.final or ("import", smoke.import_script(candidate.modules, candidate.shims))
    assert isinstance(impl.code, GitCode)
    code: dict[str, Any] = {"git": impl.code.git, "commit": impl.code.commit}
    if impl.code.subdir:
        code["subdir"] = impl.code.subdir
    if impl.code.sparse:
        code["sparse"] = list(impl.code.sparse)
    env: dict[str, Any] = {"python": PYTHON, "requirements": list(candidate.requirements.lines), "install": "none"}
    if candidate.exclude_newer:
        env["exclude_newer"] = candidate.exclude_newer
        if candidate.exempt:
            env["exclude_newer_exempt"] = candidate.exempt_list()
    if candidate.patches:
        env["patches"] = [f"{patch_dir}/{name}" for name in candidate.patches]  # in the order they were made
    if candidate.no_deps:
        env["no_deps"] = list(candidate.no_deps)
    if candidate.steps:
        env["steps"] = list(candidate.steps)
    env["vars"] = {"PYTHONPATH": ":".join(candidate.pythonpath)}
    notes = list(candidate.notes)
    if outcome is not None:
        today = datetime.now(timezone.utc).date().isoformat()
        notes.append(f"awrepro new ({today}, {outcome.tries} tries): " +
                     (f"reached level {outcome.level}" if outcome.level else f"stopped: {outcome.stopped}"))
    smoke_table: dict[str, Any] = {"script": script, "timeout": SMOKE_TIMEOUT, "expect": smoke.expect_for(level),
                                   "level": level}
    if candidate.gpu:
        smoke_table["gpu"] = True
        smoke_table["static"] = {"reason": "CUDA-only code: byte-compiled on machines without a GPU",
                                 "command": COMPILE_ALL}
    data: dict[str, Any] = {"description": f"Inferred by awrepro new from {impl.code.short()}"}
    if notes:
        data["notes"] = notes
    data.update({"code": code, "env": env, "smoke": smoke_table})
    return data
