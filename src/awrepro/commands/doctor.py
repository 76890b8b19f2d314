"""``awrepro doctor``: what this machine has for awrepro, one line per check, with the next step.

Each check is ``ok``, ``warning`` (works, but something is off or slow) or ``missing``
(something a check needs is not there: exit 1). ``--json`` prints the same as
``{"ok": BOOL, "checks": [{"name", "status", "detail", "next"}, ...]}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from awrepro import console
from awrepro.cache import Cache, human_size, unwritable
from awrepro.constants import ENV_CACHE_DIR, EXIT_FAILED, EXIT_OK
from awrepro.registry import LoadedRegistry

OK, WARNING, MISSING = "ok", "warning", "missing"
LEVELS = (OK, WARNING, MISSING)
NETWORK_TIMEOUT = 15.0
LOW_DISK = 5 * 1024**3  # an environment with torch takes about 1 GiB; a few need room
_STYLES = {OK: "green", WARNING: "yellow", MISSING: "bold red"}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # one of LEVELS
    detail: str
    next: str | None = None  # what to do about it; None when nothing


def run(registry: LoadedRegistry, cache: Cache, *, mirror: Path | None, as_json: bool) -> int:
    checks: list[Check] = []
    checks += _git()
    checks += _uv()
    checks += _interpreters()
    checks += _pip_settings()
    checks += _sandbox()
    checks += _network(registry, mirror)
    checks += _disk(cache)
    checks += _gpu()
    healthy = all(c.status != MISSING for c in checks)
    if as_json:
        console.print_plain(json.dumps({"ok": healthy, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        _print(checks)
    return EXIT_OK if healthy else EXIT_FAILED


def _print(checks: list[Check]) -> None:
    width = max(len(c.name) for c in checks)
    out = console.out()
    for check in checks:
        line = f"{check.status:<8} {check.name:<{width}}  {check.detail}"
        if check.next:
            line += f"; next: {check.next}"
        if console.is_terminal():
            out.print(line, style=_STYLES[check.status])
        else:
            console.print_plain(line)


# ---------------------------------------------------------------- the checks


def _version_of(cmd: list[str]) -> str | None:
    from awrepro import process

    done = process.run(cmd, timeout=30)
    return done.output.strip().splitlines()[0] if done.ok and done.output.strip() else None


def _git() -> list[Check]:
    path = shutil.which("git")
    version = _version_of([path, "--version"]) if path else None
    if not path or not version:
        return [Check("git", MISSING, "git not found on PATH", "install git (apt-get install git, brew install git)")]
    found = re.search(r"(\d+)\.(\d+)", version)
    if found and (int(found.group(1)), int(found.group(2))) < (2, 25):
        return [Check("git", WARNING, f"{version} ({path}): sparse checkouts need git 2.25 or newer",
                      "upgrade git")]
    return [Check("git", OK, f"{version} ({path})")]


def _uv() -> list[Check]:
    try:
        from awrepro.envs.uv import uv_binary

        binary = uv_binary()
    except Exception as exc:  # noqa: BLE001 (the uv package can be broken in many ways)
        return [Check("uv", MISSING, f"uv cannot be found: {exc}",
                      "reinstall awrepro (uv is a dependency), or use --backend pip")]
    version = _version_of([binary, "--version"])
    if version is None:
        return [Check("uv", MISSING, f"{binary} does not run", "reinstall awrepro, or use --backend pip")]
    return [Check("uv", OK, f"{version} ({binary})")]


def _interpreters() -> list[Check]:
    from awrepro import interpreters

    found = []
    seen: set[Path] = set()
    for path, how in interpreters.sources():
        interpreter = interpreters.probe(path)
        if interpreter is not None and path.resolve() not in seen:  # a venv's python3 and python3.11 are one
            seen.add(path.resolve())
            found.append(Check("python", OK, f"{interpreter.version} {path} ({how})"))
    return found or [Check("python", MISSING, "no interpreter found",
                           "install one: pyenv install 3.11, uv python install 3.11 or your system's package")]


def _pip_settings() -> list[Check]:
    from awrepro.envs.base import user_pip_settings

    args = user_pip_settings().as_args()
    if not args:
        return [Check("pip settings", OK, "none (uv uses its defaults: PyPI)")]
    return [Check("pip settings", OK, "passed on to uv: " + " ".join(args))]


def _sandbox() -> list[Check]:
    """The sandbox third-party code runs in: bubblewrap, or the fallback with protections off."""
    from awrepro import sandbox

    if sandbox.current_mode().contained:
        return [Check("sandbox", OK, sandbox.describe_mode())]
    return [Check("sandbox", WARNING, sandbox.describe_mode(),
                  "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces")]


def _hosts(registry: LoadedRegistry) -> dict[str, str]:
    """One repository URL per host of the registry's git sources."""
    hosts: dict[str, str] = {}
    for url in _git_urls(registry):
        hosts.setdefault(_host(url), url)
    return hosts


def _git_urls(registry: LoadedRegistry) -> list[str]:
    from awrepro.model import GitCode

    return sorted({e.impl.code.git for e in registry.entries() if e.impl is not None and isinstance(e.impl.code, GitCode)})


def _host(url: str) -> str:
    """``github.com``, ``127.0.0.1:9418``: the server part of an URL (scp-like ``git@host:path`` too)."""
    from urllib.parse import urlsplit

    from awrepro.constants import SCP_LIKE_URL

    if re.match(SCP_LIKE_URL, url):
        return url.split("@", 1)[1].split(":", 1)[0]
    return urlsplit(url).netloc.rpartition("@")[2] or "local"


def _network(registry: LoadedRegistry, mirror: Path | None) -> list[Check]:
    if mirror is not None:
        return [_mirror(registry, mirror)]
    hosts = _hosts(registry)
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        return list(pool.map(lambda item: _answers(*item), hosts.items()))


def _answers(host: str, url: str) -> Check:
    from awrepro import git

    started = time.monotonic()
    done = git.run(["ls-remote", url, "HEAD"], timeout=NETWORK_TIMEOUT)
    took = time.monotonic() - started
    if done.ok:
        return Check(f"host {host}", OK, f"answers (git ls-remote {url}: {took:.1f}s)")
    reason = f"timed out after {NETWORK_TIMEOUT:.0f} s" if done.timed_out else (git.explain(done.output) or "no output")
    return Check(f"host {host}", WARNING, f"does not answer (git ls-remote {url}: {reason})",
                 "check the network or proxy, or take code from a mirror: --mirror DIR (see `awrepro mirror`)")


def _mirror(registry: LoadedRegistry, mirror: Path) -> Check:
    from awrepro.errors import FetchError
    from awrepro.sources import FetchOptions, upstream_of

    urls = _git_urls(registry)
    absent = []
    for url in urls:
        try:
            upstream_of(url, FetchOptions(mirror_dir=mirror))
        except FetchError:
            absent.append(url)
    if not mirror.is_dir():
        return Check("mirror", MISSING, f"{mirror} is not a folder", f"make it: awrepro mirror {mirror} --all")
    if absent:
        return Check("mirror", MISSING, f"{mirror} lacks {len(absent)} of {len(urls)} repositories ({absent[0]}, ...)",
                     f"where the network is reachable: awrepro mirror {mirror} --all")
    return Check("mirror", OK, f"{mirror} holds all {len(urls)} repositories (the network is not used)")


def _disk(cache: Cache) -> list[Check]:
    from awrepro.commands.cache_info import sizes

    total = sum(sizes(cache).values()) if cache.root.exists() else 0
    code = unwritable(cache.root)
    if code is None:
        checks = [Check("cache", OK, f"{cache.root}: {human_size(total)}")]
    else:
        checks = [Check("cache", WARNING, f"{cache.root}: {human_size(total)}, cannot be written ({os.strerror(code)}): "
                        "commands that only read it work, the others stop",
                        f"set {ENV_CACHE_DIR} or --cache-dir to a writable folder to fetch, set up or check")]
    existing = next(p for p in (cache.root, *cache.root.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < LOW_DISK:
        checks.append(Check("disk", WARNING, f"{human_size(free)} free on {existing}",
                            "free some space: awrepro gc removes what no entry uses"))
    else:
        checks.append(Check("disk", OK, f"{human_size(free)} free on {existing}"))
    return checks


def _gpu() -> list[Check]:
    from awrepro import runner

    if runner.gpu_present():
        return [Check("gpu", OK, "visible (nvidia-smi -L lists one)")]
    return [Check("gpu", WARNING, "none visible (no nvidia-smi, or it lists none)",
                  "entries with gpu = true run their static check or are skipped; fine on a CPU machine")]
