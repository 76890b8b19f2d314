"""Every git call awrepro makes, with a scrubbed environment, a timeout and errors told apart.

git runs as a subprocess through ``process.run`` (GitPython's import alone costs ~80 ms on a
path whose start-up is benchmarked, and it adds nothing over the CLI here). git never prompts,
never runs hooks, and speaks only the transports allowed for the call.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from awrepro import process
from awrepro.constants import SCP_LIKE_URL
from awrepro.errors import FetchError, UnsafeSourceError, disk_full_in, network_unreachable, raise_if_disk_full

DEFAULT_TIMEOUT = 600.0
RETRIES = 3
RETRY_BUDGET_SECONDS = 120.0
_SCP_LIKE = re.compile(SCP_LIKE_URL)

# Variables that would point git at another repository than the one we name.
_STRAY = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
          "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
          "GIT_CONFIG_COUNT", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_QUARANTINE_PATH", "GIT_PROTOCOL", "GIT_TRACE")


def url_scheme(url: str) -> str:
    """``https``, ``ssh``, ``git``, ``file`` or whatever else the URL names (``ext`` for ``ext::``)."""
    if _SCP_LIKE.match(url):
        return "ssh"
    found = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)", url)
    if found:
        return found.group(1).lower()
    return "file"  # a plain path


def check_url(url: str, *, allow_file: bool) -> None:
    """Refuse a transport before git ever sees the URL."""
    scheme = url_scheme(url)
    allowed = {"https", "ssh", "git"} | ({"file"} if allow_file else set())
    if scheme not in allowed:
        hint = " (local paths need --allow-file or AWREPRO_ALLOW_FILE_URLS=1)" if scheme == "file" else ""
        raise UnsafeSourceError(f"refusing {url!r}: transport {scheme!r} is not allowed; use https, ssh or git{hint}")


def environ(*, allow_file: bool, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (their git config, credential helpers, ssh agent) minus stray GIT_* variables."""
    source = os.environ if source is None else source
    env = {k: v for k, v in source.items() if k not in _STRAY and not k.startswith("GIT_TRACE")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    env["GIT_ALLOW_PROTOCOL"] = "https:ssh:git" + (":file" if allow_file else "")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def run(args: Sequence[str], *, cwd: Path | None = None, allow_file: bool = False, timeout: float = DEFAULT_TIMEOUT,
        log_path: Path | None = None, input_text: str | None = None, whole_output: bool = False) -> process.Completed:
    """``git ARGS`` with hooks off; never raises for a non-zero exit."""
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", *args]
    return process.run(cmd, cwd=cwd, env=environ(allow_file=allow_file), timeout=timeout, log_path=log_path,
                       input_text=input_text, whole_output=whole_output)


def checked(args: Sequence[str], *, what: str, cwd: Path | None = None, allow_file: bool = False,
            log_path: Path | None = None, whole_output: bool = False) -> str:
    """``git ARGS``; a failure raises FetchError naming ``what`` and git's last error line."""
    done = run(args, cwd=cwd, allow_file=allow_file, log_path=log_path, whole_output=whole_output)
    if not done.ok:
        reason = "timed out" if done.timed_out else process.last_error_line(done.output)
        raise_if_disk_full(done.output, what)
        raise FetchError(f"{what} failed: {reason}")
    return done.output.strip()


# What a failed or killed git fetch leaves in a repository: quarantine folders, half-written packs
# and loose objects. On a full disk they are what keeps it full.
TEMPORARIES = ("objects/incoming-*", "objects/pack/tmp_*", "objects/pack/.tmp-*", "objects/tmp_obj_*",
               "objects/??/tmp_obj_*")


def temporaries(repo: Path) -> list[Path]:
    return [leftover for pattern in TEMPORARIES for leftover in sorted(repo.glob(pattern))]


def remove_temporaries(repo: Path) -> None:
    """Only while no git works in ``repo``: awrepro's fetches hold the mirror's lock."""
    import shutil

    for leftover in temporaries(repo):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


# ---------------------------------------------------------------- fetching a pinned commit

# Checked in this order: the first group whose phrase appears in git's output names the failure.
_KINDS = (
    ("not-found", ("repository not found", "does not appear to be a git repository", "not exported",
                   "no such repository", "repository does not exist")),
    ("auth", ("authentication failed", "could not read username", "terminal prompts disabled",
              "permission denied", "could not read password", "access denied")),
    ("unadvertised", ("not our ref", "unadvertised object", "couldn't find remote ref", "no such remote ref")),
    ("unreachable", ("could not resolve host", "network is unreachable", "connection refused", "failed to connect",
                     "unable to connect", "no route to host", "unable to look up")),
    # The server said why it cannot send (a damaged or incomplete copy): trying again will not help.
    ("server", ("remote: fatal:", "corruption on the remote side", "unable to read")),
    ("transient", ("connection reset", "early eof", "remote end hung up unexpectedly", "rpc failed", "timed out",
                   "http 502", "http 503", "http 504", "the requested url returned error: 5",
                   "unexpected disconnect", "temporary failure")),
)


def classify(output: str) -> str:
    """``disk-full``, ``not-found``, ``auth``, ``unadvertised``, ``unreachable``, ``server``, ``transient`` or ``other``."""
    if disk_full_in(output):
        return "disk-full"  # our disk: retrying cannot help
    text = output.lower()
    for kind, phrases in _KINDS:
        if any(phrase in text for phrase in phrases):
            return kind
    return "other"


def has_commit(repo: Path, commit: str) -> bool:
    return run(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo, timeout=60).ok


def has_pin(repo: Path, commit: str) -> bool:
    """``commit`` is there in full. Its object alone proves nothing: a killed fetch leaves the
    commit without its trees and blobs, but git writes the pin ref only once every object arrived."""
    # Read the ref's files directly: this runs before every fetch, and a git process costs more.
    loose = repo / "refs" / "awrepro" / "pins" / commit
    try:
        if loose.read_text().strip() == commit:
            return True
    except OSError:
        pass
    try:
        packed = (repo / "packed-refs").read_text()
    except OSError:
        return False
    return f"{commit} refs/awrepro/pins/{commit}\n" in packed


def init_bare(path: Path) -> None:
    checked(["init", "-q", "--bare", str(path)], what=f"git init {path}")


def fetch_commit(repo: Path, url: str, commit: str, *, allow_file: bool, log_path: Path | None = None,
                 blobless: bool = False) -> None:
    """Bring ``commit`` into the bare ``repo``: shallow by SHA first, then the full refs if refused.

    The commit is kept by a ref ``refs/awrepro/pins/SHA`` so that git's own gc never drops it.
    ``blobless`` fetches commits and trees only (a partial clone): the blobs a sparse checkout
    needs come afterwards, by ``fetch_blobs``.
    """
    try:
        _fetch_commit(repo, url, commit, allow_file=allow_file, log_path=log_path, blobless=blobless)
    except BaseException:
        remove_temporaries(repo)  # a failed fetch's objects would only take room (a full disk stays full)
        raise


def _fetch_commit(repo: Path, url: str, commit: str, *, allow_file: bool, log_path: Path | None,
                  blobless: bool) -> None:
    check_url(url, allow_file=allow_file)
    source = url
    if blobless or is_partial(repo):
        make_partial(repo, url)
        source = "origin"
    pin_ref = f"refs/awrepro/pins/{commit}"
    filtered = ["--filter=blob:none"] if source == "origin" else []
    args = [*filtered, "--depth", "1", "--", source, f"{commit}:{pin_ref}"]  # "--": a URL is never an option
    shallow, output = _fetch_with_retries(repo, args, allow_file, log_path)
    if shallow == "ok":
        return
    if shallow != "unadvertised":
        _fail(shallow, url, commit, output)
    # The server refuses to hand out an unadvertised commit (protocol v0 without
    # uploadpack.allowReachableSHA1InWant): take every advertised ref, then look again.
    unshallow = ["--unshallow"] if (repo / "shallow").exists() else []
    full, output = _fetch_with_retries(repo, [*filtered, *unshallow, "--", source, "+refs/*:refs/awrepro/remote/*"],
                                       allow_file, log_path)
    if full not in ("ok", "unadvertised"):
        _fail(full, url, commit, output)
    if not _reachable_from(repo, commit, "refs/awrepro/remote/"):  # not just a leftover of a killed fetch
        raise FetchError(f"commit {commit[:12]} not found in {url}: check that it is typed right (the full id of a "
                         "commit of this repository); if it is, it was force-pushed away or deleted upstream")
    checked(["update-ref", pin_ref, commit], what="git update-ref", cwd=repo)


def is_partial(repo: Path) -> bool:
    """The repository is a partial clone (some blobs are left upstream), read from its config file."""
    try:
        return "partialclone" in (repo / "config").read_text().lower()
    except OSError:
        return False


def make_partial(repo: Path, url: str) -> None:
    """Make ``url`` the promisor remote ``origin`` of ``repo``: filtered fetches, blobs on demand.

    It may also serve filtered fetches itself (to working copies and offline mirrors).
    """
    settings = {
        "core.repositoryformatversion": "1",
        "extensions.partialClone": "origin",
        "remote.origin.url": url,
        "remote.origin.promisor": "true",
        "remote.origin.partialclonefilter": "blob:none",
        "uploadpack.allowFilter": "true",
        "uploadpack.allowAnySHA1InWant": "true",
    }
    for key, value in settings.items():
        checked(["config", "--", key, value], what="git config", cwd=repo)


def fetch_blobs(repo: Path, commit: str, wanted: Callable[[str], bool], *, allow_file: bool,
                log_path: Path | None = None) -> None:
    """Fetch the blobs of ``commit`` whose paths are ``wanted`` and that a partial ``repo`` lacks."""
    listing = checked(["ls-tree", "-r", "--full-tree", commit], what="git ls-tree", cwd=repo, whole_output=True)
    needed = set()
    for line in listing.splitlines():
        meta, _, path = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and wanted(path):
            needed.add(parts[2])
    objects = checked(["rev-list", "--objects", "--missing=print", "--no-object-names", commit],
                      what="git rev-list", cwd=repo, whole_output=True)
    missing = sorted(needed & {line[1:] for line in objects.splitlines() if line.startswith("?")})
    if not missing:
        return
    done = run(["-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                "--recurse-submodules=no", "--filter=blob:none", "--stdin", "origin"], cwd=repo,
               allow_file=allow_file, log_path=log_path, input_text="\n".join(missing) + "\n")
    if not done.ok:
        remove_temporaries(repo)
        raise_if_disk_full(done.output, f"fetching {len(missing)} files of {commit[:12]}")
        raise FetchError(f"fetching {len(missing)} files of {commit[:12]} failed: {process.last_error_line(done.output)}")


def _reachable_from(repo: Path, commit: str, prefix: str) -> bool:
    if not has_commit(repo, commit):
        return False
    done = run(["for-each-ref", "--count=1", "--format=%(refname)", "--contains", commit, prefix], cwd=repo)
    return done.ok and bool(done.output.strip())


def _fetch_with_retries(repo: Path, args: list[str], allow_file: bool, log_path: Path | None) -> tuple[str, str]:
    """Run one ``git fetch``, retrying transient failures with backoff (bounded in tries and time).

    Returns ``("ok", "")`` or the failure's kind and git's output.
    """
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    for attempt in range(RETRIES):
        done = run(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", *args], cwd=repo,
                   allow_file=allow_file, log_path=log_path)
        if done.ok:
            return "ok", ""
        kind = "transient" if done.timed_out else classify(done.output)
        if kind != "transient" or attempt == RETRIES - 1 or time.monotonic() + 2**attempt > deadline:
            return kind, done.output
        time.sleep(2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _fail(kind: str, url: str, commit: str, output: str) -> None:
    raise_if_disk_full(output, f"git fetch of {commit[:12]}")
    raise FetchError(_permanent_message(kind, url, commit, output))


def _permanent_message(kind: str, url: str, commit: str, output: str) -> str:
    detail = _detail(kind, output)
    if kind == "not-found":
        return f"repository not found: {url}"
    if kind == "auth":
        return f"authentication required for {url} (git never prompts: set up a credential helper or an ssh key)"
    if kind == "unreachable":
        return network_unreachable(url, detail, git=True).message
    if kind == "transient":
        return f"fetching {url} kept failing after {RETRIES} tries ({detail})"
    if kind == "server":
        return f"{url} cannot send commit {commit[:12]} ({detail}): its copy is damaged or incomplete; not retried"
    return f"fetching {commit[:12]} from {url} failed: {detail}"


def explain(output: str) -> str:
    """The line of git's output that says why it failed."""
    return _detail(classify(output), output)


def _detail(kind: str, output: str) -> str:
    """git's line that names the failure: its last error line can be a bare
    ``fatal: unable to connect to HOST:``, with ``errno=Connection refused`` on the next line."""
    told = [line.strip() for line in output.splitlines() if line.strip().startswith("remote: fatal:")]
    if told:  # the server's own reason beats what the client made of it ("bad pack header")
        return told[-1][:300]
    phrases = dict(_KINDS).get(kind, ())
    for line in reversed(output.splitlines()):
        if any(phrase in line.lower() for phrase in phrases):
            return line.strip()[:300]
    return process.last_error_line(output)


# ---------------------------------------------------------------- asking upstream without fetching


class Upstream(NamedTuple):
    """What ``git ls-remote`` says about a repository: its default branch and where it points."""

    head: str  # the commit HEAD points at
    branch: str | None  # refs/heads/NAME that HEAD names (None when the server does not say)
    moved_to: str | None = None  # git followed a redirect here (an http(s) repository that moved)


def ls_remote(url: str, *patterns: str, allow_file: bool = False, timeout: float = 60.0) -> process.Completed:
    """``git ls-remote`` through the user's git configuration (``insteadOf`` mirrors apply)."""
    check_url(url, allow_file=allow_file)
    return run(["ls-remote", "--symref", "--", url, *patterns], allow_file=allow_file, timeout=timeout)


def upstream_head(url: str, *, allow_file: bool = False, timeout: float = 60.0) -> Upstream:
    """The default branch's head; a failure raises FetchError saying why (not found, unreachable...)."""
    done = ls_remote(url, "HEAD", allow_file=allow_file, timeout=timeout)
    if not done.ok:
        raise FetchError(upstream_failure(url, done))
    branch = head = None
    for line in done.output.splitlines():
        ref_line = re.match(r"^ref: (refs/heads/\S+)\tHEAD$", line)
        sha_line = re.match(r"^([0-9a-f]{40})\tHEAD$", line)
        branch = ref_line.group(1) if ref_line else branch
        head = sha_line.group(1) if sha_line else head
    if head is None:
        raise FetchError(f"{url} has no default branch (an empty repository?)")
    return Upstream(head, branch, redirected_to(done.output))


def resolve_ref(url: str, ref: str, *, allow_file: bool = False) -> str:
    """A branch or tag upstream, as the full commit it names (tags peeled)."""
    done = ls_remote(url, ref, f"refs/tags/{ref}^{{}}", allow_file=allow_file)
    if not done.ok:
        raise FetchError(upstream_failure(url, done))
    found: dict[str, str] = {}
    for line in done.output.splitlines():
        sha, _, name = line.partition("\t")
        if re.fullmatch(r"[0-9a-f]{40}", sha):
            found[name] = sha
    for name in (f"refs/tags/{ref}^{{}}", f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        if name in found:
            return found[name]
    raise FetchError(f"{url} has no branch or tag {ref!r}")


def upstream_failure(url: str, done: process.Completed) -> str:
    kind = "transient" if done.timed_out else classify(done.output)
    if kind == "transient" and done.timed_out:
        return f"{url}: timed out asking for its refs"
    return _permanent_message(kind, url, "HEAD", done.output).replace("fetching HEAD from ", "asking ")


def redirected_to(output: str) -> str | None:
    """git's ``warning: redirecting to URL`` (it follows an http redirect of a moved repository)."""
    found = re.search(r"redirecting to (\S+)", output)
    return found.group(1).removesuffix("/info/refs?service=git-upload-pack").rstrip("/") if found else None


def commit_time(repo: Path, rev: str = "HEAD") -> datetime:
    """The committer time of ``rev``, read from the commit object itself: a shallow checkout
    (whose parents are absent) cannot run ``git log`` on it."""
    text = checked(["cat-file", "commit", rev], what="git cat-file (the commit's date)", cwd=repo)
    for line in text.splitlines():
        if line.startswith("committer "):
            seconds, offset = line.rsplit(" ", 2)[-2:]
            sign = -1 if offset.startswith("-") else 1
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
            return datetime.fromtimestamp(int(seconds), zone)
        if not line:
            break
    raise FetchError(f"commit {rev} has no committer line")
