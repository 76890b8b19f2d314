"""Environments: one per hash of the resolved spec, shared by every entry with that spec.

An environment is built in place under a lock (a virtual environment cannot be moved), and
counts only once its marker exists: the marker is written last, after the installs and the
health check passed. Leftovers of an interrupted build have no marker, so the next run wipes
them and builds again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from awrepro import interpreters, locks, process
from awrepro.cache import Cache
from awrepro.envs import dates, pip, uv
from awrepro.envs.base import Backend, IndexOptions, env_python, user_pip_settings
from awrepro.errors import EntrySkipped, EnvSetupError, raise_if_disk_full, space_in
from awrepro.model import ArchiveCode, Implementation
from awrepro.sandbox import Confinement

if TYPE_CHECKING:
    from awrepro.registry import LoadedRegistry

BACKENDS: dict[str, Backend] = {"uv": uv, "pip": pip}
FORMAT = 1  # bump when the way environments are built changes: every key changes with it
MARKER = "awrepro-env.json"
COPY_FOLDER = "awrepro-src"  # an environment's own copy of the checkout, when its builds write into it
INSTALL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Environment:
    prefix: Path
    key: str
    python_version: str
    built: bool
    code_root: Path | None = None  # the environment's own copy of the code (see Plan.owns_copy), or None

    @property
    def python(self) -> Path:
        return env_python(self.prefix)

    def root_for(self, checkout_root: Path) -> Path:
        """Where the entry's commands run: this environment's own copy, else the shared checkout."""
        return self.code_root or checkout_root


@dataclass(frozen=True)
class Plan:
    """Everything that decides what an environment holds; its hash is the environment's key."""

    impl: Implementation
    backend: str
    interpreter: interpreters.Interpreter
    root: Path  # the shared checkout (or its subdir), as fetched
    checkout_key: str
    requirements_text: str
    bound: dates.DateBound | None = None
    tree: Path | None = None  # the checkout's whole tree (root is inside it)

    @property
    def owns_copy(self) -> bool:
        """Steps and installs of the checkout write into it (``.so`` files, egg-info, build/):
        such an environment builds in a copy of its own, so no other environment sees its products."""
        return self.impl.env.install != "none" or bool(self.impl.env.steps)

    def code_root(self, prefix: Path) -> Path:
        """Where installs and steps run: the environment's own copy, or the shared checkout."""
        if not self.owns_copy:
            return self.root
        tree = self.tree or self.root
        return prefix / COPY_FOLDER / tree.name / self.root.relative_to(tree)

    def key(self) -> str:
        env = self.impl.env
        tied_to_checkout = self.owns_copy
        spec = {
            "format": FORMAT,
            "backend": self.backend,
            "python": self.interpreter.version,
            "requirements": list(env.requirements),
            "requirements_file": self.requirements_text,
            "no_deps": list(env.no_deps),
            "install": env.install,
            "find_links": list(env.find_links),
            "index_url": env.index_url,
            "extra_index_urls": list(env.extra_index_urls),
            "steps": list(env.steps),
            "vars": env.vars if env.steps else {},
            "checkout": self.checkout_key if tied_to_checkout else None,
        }
        if self.bound is not None:  # only when set, so that no other environment's key changes
            spec["exclude_newer"] = self.bound.cutoff
            spec["exclude_newer_exempt"] = list(self.bound.exempt)
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def plan(impl: Implementation, root: Path, checkout_key: str, backend: str | None = None,
         tree: Path | None = None) -> Plan:
    """Resolve an implementation's environment spec on this machine; skip it if no interpreter fits."""
    interpreter = interpreters.find(impl.env.python)
    if interpreter is None:
        raise EntrySkipped(f"needs Python {impl.env.python}; none found (see README: adding an interpreter)")
    text = ""
    if impl.env.requirements_file:
        from awrepro.paths import inside

        path = inside(tree or root, root, impl.env.requirements_file, "env.requirements_file",
                      EnvSetupError)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise EnvSetupError(f"requirements file {impl.env.requirements_file} cannot be read in the checkout") from None
    bound = dates.bound_for(impl.env.exclude_newer, impl.env.exclude_newer_exempt, root)
    return Plan(impl, backend or impl.env.backend, interpreter, root, checkout_key, text, bound, tree)


def location(cache: Cache, key: str) -> Path:
    return cache.envs / key[:16]


def ready(prefix: Path, key: str) -> bool:
    """The marker says this exact spec finished installing and passed its health check."""
    try:
        marker = json.loads((prefix / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("key") == key and env_python(prefix).exists()


def ensure(cache: Cache, the_plan: Plan, log_path: Path | None = None) -> Environment:
    """Reuse the environment for this plan, or build it (once, even with concurrent runs)."""
    key = the_plan.key()
    prefix = location(cache, key)
    code_root = the_plan.code_root(prefix) if the_plan.owns_copy else None
    if ready(prefix, key):
        return Environment(prefix, key, the_plan.interpreter.version, built=False, code_root=code_root)
    with space_in(cache.envs, EnvSetupError), locks.locked(cache.envs / f"{key[:16]}.lock"):
        if ready(prefix, key):
            return Environment(prefix, key, the_plan.interpreter.version, built=False, code_root=code_root)
        if prefix.exists():  # an interrupted build: never trusted
            _end_leftover_processes(prefix)
            shutil.rmtree(prefix)
        try:
            _build(cache, the_plan, prefix, log_path)
            _health_check(the_plan, prefix, log_path)
        except BaseException:
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        marker = {"key": key, "python": the_plan.interpreter.version, "backend": the_plan.backend,
                  "requirements": list(the_plan.impl.env.requirements), "created": datetime.now(timezone.utc).isoformat()}
        temporary = prefix / f".{MARKER}.tmp"
        temporary.write_text(json.dumps(marker, indent=2) + "\n")
        os.replace(temporary, prefix / MARKER)
    return Environment(prefix, key, the_plan.interpreter.version, built=True, code_root=code_root)


def _end_leftover_processes(prefix: Path) -> None:
    """End what a killed build left running, before its folder is wiped and built again.

    Build commands run in sessions of their own, so they outlive a run killed with SIGKILL and
    would go on writing into the folder (``Directory not empty`` while it is wiped, files mixed
    into the new build). They are found through /proc (Linux; elsewhere nothing is found) by the
    folder in their command line or as their VIRTUAL_ENV; each one's process group is killed.
    """
    inside = (str(prefix).encode(), f"{prefix}{os.sep}".encode())
    active = f"VIRTUAL_ENV={prefix}".encode()

    def groups() -> set[int]:
        found: set[int] = set()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                environ = (proc / "environ").read_bytes().split(b"\0")
                if active in environ or any(arg == inside[0] or arg.startswith(inside[1]) for arg in args):
                    found.add(int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]))
            except (OSError, ValueError, IndexError):
                continue
        found.discard(os.getpgrp())
        return {pgid for pgid in found if pgid > 1}

    deadline = time.monotonic() + process.GRACE_SECONDS
    while (left := groups()) and time.monotonic() < deadline:
        for pgid in left:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def _index_options(the_plan: Plan) -> IndexOptions:
    env = the_plan.impl.env
    own = IndexOptions(env.find_links, env.index_url, env.extra_index_urls)
    if the_plan.backend != "uv":
        return own  # pip reads the user's configuration itself
    user = user_pip_settings()
    return IndexOptions(
        find_links=own.find_links + user.find_links,
        index_url=own.index_url or user.index_url,
        extra_index_urls=own.extra_index_urls + user.extra_index_urls,
        constraints=user.constraints,
    )


def _build(cache: Cache, the_plan: Plan, prefix: Path, log_path: Path | None) -> None:
    backend = BACKENDS[the_plan.backend]
    env = the_plan.impl.env
    prefix.parent.mkdir(parents=True, exist_ok=True)
    root = the_plan.code_root(prefix)
    prefix.mkdir(parents=True, exist_ok=True)  # a folder the sandbox can make writable
    with scratch(cache) as tmp:
        environ = process.scrubbed_environ(allow=process.INSTALL_ALLOWLIST, prefixes=process.INSTALL_PREFIXES,
                                           extra={"TMPDIR": str(tmp)})
        index = _pinned(_index_options(the_plan), env.requirements, tmp)
        confinement = _installer_confinement(cache, the_plan, prefix, tmp, index, environ)
        _step("create the environment", backend.create(prefix, the_plan.interpreter.path), the_plan.root, environ,
              log_path, confinement)
        if the_plan.owns_copy:
            _copy_checkout(the_plan, prefix)
        bounded, unbounded = _date_bound(the_plan, prefix, index, environ, log_path)
        requirements = list(env.requirements)
        if env.requirements_file:
            requirements += ["-r", str(root / env.requirements_file)]
        steps: list[tuple[str, list[str]]] = []
        if unbounded:
            steps.append(("install the packages exempt from exclude_newer",
                          backend.install_command(prefix, unbounded, index)))
        if requirements:
            steps.append(("install requirements", backend.install_command(prefix, [*bounded, *requirements], index)))
        later = [*bounded, *(["--constraint", index.pinned] if index.pinned else [])]
        if env.no_deps:
            steps.append(("install --no-deps packages",
                          backend.install_command(prefix, [*later, "--no-deps", *env.no_deps], index)))
        if env.install != "none":
            target = ["-e", str(root)] if env.install == "editable" else [str(root)]
            steps.append((f"{env.install} install of the checkout", backend.install_command(prefix, [*later, *target], index)))
        for what, cmd in steps:
            _step(what, cmd, root, environ, log_path, confinement)
        # Steps are the entry's own shell commands in third-party code: the smoke tests' allowlist,
        # a scratch HOME, and only this environment (its copy of the checkout included) to write to.
        activated = activate(prefix, the_plan.impl, root, process.scrubbed_environ(extra={"TMPDIR": str(tmp)}))
        own = Confinement(writable=(prefix, tmp), readable=(cache.root, *_interpreter_home(the_plan)),
                          scratch_home=tmp / "home")
        for command in env.steps:
            _step(f"step `{command}`", ["/bin/sh", "-c", command], root, activated, log_path, own)


def _pinned(index: IndexOptions, requirements: tuple[str, ...], tmp: Path) -> IndexOptions:
    """Exact pins of the requirements hold in every later install too (and, with uv, in isolated builds).

    A later step (the checkout's install, a --no-deps package) could otherwise move a pinned
    package: a setup.py asking for another torch would replace the local wheel with a download.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    pins = []
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        specs = list(requirement.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            marker = f"; {requirement.marker}" if requirement.marker else ""
            pins.append(f"{requirement.name}=={specs[0].version}{marker}")
    if not pins:
        return index
    path = tmp / "awrepro-pins.txt"
    path.write_text("\n".join(pins) + "\n")
    return IndexOptions(index.find_links, index.index_url, index.extra_index_urls, index.constraints, pinned=str(path))


def _date_bound(the_plan: Plan, prefix: Path, index: IndexOptions, environ: dict[str, str],
                log_path: Path | None) -> tuple[list[str], list[str]]:
    """(options bounding every install by the date, requirements to install first without a bound)."""
    bound = the_plan.bound
    if bound is None:
        return [], []
    env = the_plan.impl.env
    local = dates.local_distributions(index.find_links)
    groups = dates.exempt_groups(bound, list(env.requirements), local)
    if the_plan.backend == "uv":
        resolver = dates.Resolver(uv.uv_binary(), the_plan.interpreter.path, index.as_args(), environ,
                                  the_plan.root, log_path)
        exempt = dates.exemptions(groups, resolver)
        _log(log_path, f"exclude_newer {bound.cutoff}; exempt: {', '.join(f'{n}={w}' for n, w in sorted(exempt.items()))}")
        return dates.uv_args(bound, exempt), []
    # pip bounds one whole install, with no exemption per package: the exempt ones go first, unbounded.
    helped = process.run([str(env_python(prefix)), "-m", "pip", "install", "--help"], env=environ, timeout=120,
                         whole_output=True)
    if not dates.pip_supports(helped.output):
        version = process.run([str(env_python(prefix)), "-m", "pip", "--version"], env=environ, timeout=120)
        found = version.output.split()[1] if version.ok and len(version.output.split()) > 1 else "in the environment"
        raise EnvSetupError(f"exclude_newer needs pip's {dates.PIP_OPTION} (pip 26 or newer); pip {found} has "
                            "none: use backend = \"uv\", or drop exclude_newer")
    if any(when is not None for when in groups):
        raise EnvSetupError("exclude_newer_exempt with a date of its own needs backend = \"uv\" (pip bounds a whole "
                            "install by one date)")
    return [dates.PIP_OPTION, bound.cutoff], groups.get(None, [])


def _copy_checkout(the_plan: Plan, prefix: Path) -> None:
    """The environment's own copy of the whole checkout tree (a real copy: builds may rewrite files)."""
    tree = the_plan.tree or the_plan.root
    target = prefix / COPY_FOLDER / tree.name
    try:
        shutil.copytree(tree, target, symlinks=True)
    except (OSError, shutil.Error) as exc:
        raise EnvSetupError(f"cannot copy the checkout into {target.parent}: {_os_reason(exc)}") from None


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        return str(exc.args[0][0][-1])
    return getattr(exc, "strerror", None) or str(exc)


def _interpreter_home(the_plan: Plan) -> tuple[Path, ...]:
    """The base interpreter's installation, which a hidden home or /tmp could otherwise hide (pyenv, uv)."""
    real = Path(os.path.realpath(the_plan.interpreter.path))
    return (real.parent.parent,)


def _installer_confinement(cache: Cache, the_plan: Plan, prefix: Path, tmp: Path, index: IndexOptions,
                           environ: dict[str, str]) -> Confinement:
    """Installers (and the package builds they run) write the environment, their own cache and TMPDIR.

    They keep the caller's HOME (their configuration is there), minus its credential files. uv
    hard-links packages from its cache, which works only within one mount: when the cache and the
    environment share a filesystem, their common folder is the one writable bind.
    """
    caches = _installer_caches(the_plan.backend, environ)
    writable = [tmp, *_linkable([prefix, *caches])]
    user = user_pip_settings()  # pip reads them itself: what they name must be visible too
    named = (*index.find_links, *index.constraints, *user.find_links, *user.constraints,
             *([os.environ["PIP_CONFIG_FILE"]] if os.environ.get("PIP_CONFIG_FILE") else []))
    local = [Path(p.removeprefix("file://")) for p in named if "://" not in p or p.startswith("file://")]
    readable = (cache.root, *_interpreter_home(the_plan), *local)
    return Confinement(writable=tuple(writable), readable=readable)


def _installer_caches(backend: str, environ: dict[str, str]) -> list[Path]:
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    if backend == "uv":
        path = Path(os.environ.get("UV_CACHE_DIR") or xdg / "uv")
        environ["UV_CACHE_DIR"] = str(path)  # the folder made writable is the one uv uses
    else:
        path = Path(os.environ.get("PIP_CACHE_DIR") or xdg / "pip")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return []  # no cache then: the installer says so itself
    return [path]


def _linkable(paths: list[Path]) -> list[Path]:
    """``paths``, or their common folder when they are on one filesystem below a folder of its own."""
    if len(paths) < 2:
        return paths
    real = [Path(os.path.realpath(p)) for p in paths]
    common = Path(os.path.commonpath(real))
    try:
        same = len({p.stat().st_dev for p in real if p.exists()} | {common.stat().st_dev}) == 1
    except OSError:
        same = False
    return [common] if same and len(common.parts) > 2 else real


def _step(what: str, cmd: list[str], cwd: Path, environ: dict[str, str], log_path: Path | None,
          confinement: Confinement) -> None:
    _log(log_path, f"$ {' '.join(cmd)}")
    done = process.run(cmd, cwd=cwd, env=environ, timeout=INSTALL_TIMEOUT, log_path=log_path, sandbox=confinement)
    if not done.ok:
        reason = "timed out" if done.timed_out else (process.last_error_line(done.output) or f"exit code {done.returncode}")
        raise_if_disk_full(done.output, what)
        raise EnvSetupError(f"{what} failed: {reason}")


def _health_check(the_plan: Plan, prefix: Path, log_path: Path | None) -> None:
    """The interpreter is in place and every declared distribution is installed.

    Read from the environment's metadata rather than by starting Python and importing: import
    names differ (opencv-python is ``cv2``), importing torch alone takes seconds, and the
    installer has just run this interpreter anyway.
    """
    from packaging.requirements import Requirement

    python = env_python(prefix)
    if not os.access(python.resolve(), os.X_OK):
        raise EnvSetupError(f"health check failed: {python} does not lead to an interpreter")
    installed = {_normalize(p.name.split("-")[0]) for p in prefix.glob("lib/python*/site-packages/*.dist-info")}
    declared = [Requirement(r).name for r in (*the_plan.impl.env.requirements, *the_plan.impl.env.no_deps)]
    missing = [name for name in declared if _normalize(name) not in installed]
    _log(log_path, f"health: {'missing ' + ', '.join(missing) if missing else 'ok'}")
    if missing:
        raise EnvSetupError(f"health check failed: not installed: {', '.join(missing)}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def activate(prefix: Path, impl: Implementation, root: Path, base: dict[str, str]) -> dict[str, str]:
    """``base`` with the environment active (PATH, VIRTUAL_ENV) and the entry's variables set."""
    environ = dict(base)
    environ.pop("PYTHONHOME", None)
    environ["VIRTUAL_ENV"] = str(prefix)
    environ["PATH"] = f"{prefix / 'bin'}{os.pathsep}{base.get('PATH', os.defpath)}"
    environ.update(expand_vars(impl, root))
    return environ


def expand_vars(impl: Implementation, root: Path) -> dict[str, str]:
    return {name: value.replace("{checkout}", str(root)) for name, value in impl.env.vars.items()}


@contextmanager
def scratch(cache: Cache) -> Iterator[Path]:
    """A temporary folder inside the cache (TMPDIR for children), removed afterwards."""
    base = cache.root / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _log(log_path: Path | None, line: str) -> None:
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")


def used_environments(registry: LoadedRegistry, cache: Cache) -> set[Path]:
    """Environment folders that some entry of ``registry`` would use now (for ``gc``)."""
    from awrepro import sources

    used: set[Path] = set()
    if not cache.envs.is_dir():
        return used
    for entry in registry.entries():
        impl = entry.impl
        if impl is None:
            continue
        try:
            patches = [text for _, text in sources.read_patches(impl, registry.root)]
            key = sources.checkout_key(impl, patches)
            root = cached_root(cache, impl, patches, key)
            if root is None:
                continue
            used.add(location(cache, plan(impl, root, key).key()))
        except Exception:  # noqa: BLE001 (an entry that cannot be planned keeps nothing alive)
            continue
    return used


def cached_root(cache: Cache, impl: Implementation, patches: list[bytes], key: str) -> Path | None:
    """Where the entry's code sits in the cache (git checkout or unpacked archive), if it is there."""
    code = impl.code
    if isinstance(code, ArchiveCode):
        from awrepro import archives

        if not code.sha256:
            return None
        tree = archives.folder(cache, code.sha256, patches) / "tree"
        return archives.root_in(tree, code) if tree.is_dir() else None
    tree = cache.checkouts / key / code.repo_name
    if not tree.is_dir():
        return None
    return tree / code.subdir if code.subdir else tree
