"""Paths from a registry or a repository that lead out of the checkout are refused before anything runs.

One repository holds the ways out: ``etc -> /etc``, ``passwd -> /etc/passwd`` and ``up -> ../..``.
Each case is an entry of one registry that names one of them as its ``subdir``, ``cwd``,
``requirements_file``, sparse folder or patch target; one ``check --all`` (a real awrepro process)
runs them all. It runs without bubblewrap (``AWREPRO_SANDBOX=fallback``), where the path checks
are what stands between a smoke test and ``/etc``: every smoke test would touch a marker file, and
only the entry whose paths stay inside may; so would the setup step each refused entry has.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.commands.checkkit import load_json, result_lines, toml_str, uv_cache  # noqa: F401 (fixture)
from tests.conftest import _GIT_ENV
from tests.gitfixtures import GitDaemon, RepoFactory

NEW_FILE_PATCH = """\
diff --git a/{0} b/{0}
new file mode 100644
--- /dev/null
+++ b/{0}
@@ -0,0 +1 @@
+escaped
"""


@dataclass(frozen=True)
class Case:
    tables: dict[str, list[str]]  # extra lines for the entry's code, env, smoke and smoke.static tables
    key: str  # the registry key the refusal names
    value: str
    status: str
    target: str  # where the path leads (a regular expression; CHECKOUTS is the cache's checkouts folder)
    patch: str | None = None  # the target of the entry's patch (patches/ID.patch)


CASES = {
    "subdir-etc": Case({"code": ['subdir = "etc"']}, "code.subdir", "etc", "fetch-error", "/etc"),
    "subdir-up": Case({"code": ['subdir = "up"']}, "code.subdir", "up", "fetch-error", "CHECKOUTS"),
    "cwd-etc": Case({"smoke": ['cwd = "etc"']}, "smoke.cwd", "etc", "fetch-error", "/etc"),
    "cwd-up": Case({"smoke": ['cwd = "up"']}, "smoke.cwd", "up", "fetch-error", "CHECKOUTS"),
    "static-cwd-etc": Case({"static": ['cwd = "etc"']}, "smoke.static.cwd", "etc", "fetch-error", "/etc"),
    "requirements-etc": Case({"env": ['requirements_file = "passwd"']}, "env.requirements_file", "passwd",
                             "setup-error", "/etc/passwd"),
    "requirements-up": Case({"env": ['requirements_file = "up/requirements.txt"']}, "env.requirements_file",
                            "up/requirements.txt", "setup-error", "CHECKOUTS/requirements.txt"),
    "sparse-etc": Case({"code": ['sparse = ["pkg", "etc"]']}, "code.sparse.1", "etc", "fetch-error", "/etc"),
    "sparse-up": Case({"code": ['sparse = ["!up"]']}, "code.sparse.0", "up", "fetch-error", "CHECKOUTS"),
    "patch-etc": Case({}, "env.patches.0 (patches/patch-etc.patch) target", "etc/awrepro-escape", "fetch-error",
                      "/etc/awrepro-escape", patch="etc/awrepro-escape"),
    "patch-up": Case({}, "env.patches.0 (patches/patch-up.patch) target", "../awrepro-escape", "fetch-error",
                     r"CHECKOUTS/\.tmp-[^/]+/awrepro-escape", patch="../awrepro-escape"),
}
INSIDE = "inside"  # the control: a symlink that stays in the checkout, as subdir and cwd


def _entry(pid: str, url: str, sha: str, markers: Path, case: Case | None) -> str:
    tables = dict(case.tables) if case else {"code": ['subdir = "here"'], "smoke": ['cwd = "pkg"']}
    touch = f"touch {markers / pid}"
    if case:  # a setup step would leave the marker too
        tables["env"] = [*tables.get("env", []), f"steps = [{toml_str(touch)}]"]
    if case and case.patch:
        tables["env"].append(f'patches = ["patches/{pid}.patch"]')
    static = tables.get("static")  # a static check only: it runs instead of a smoke test
    lines = [f"[papers.{pid}]", f'title = "Escape {pid}"', 'venue = "Tests"', "year = 2024", 'section = "Tests"',
             f"[papers.{pid}.impl.main.code]", f"git = {toml_str(url)}", f"commit = {toml_str(sha)}",
             *tables.get("code", []),
             f"[papers.{pid}.impl.main.env]", *tables.get("env", []),
             f"[papers.{pid}.impl.main.smoke]", *([] if static else [f"command = {toml_str(touch)}"]),
             *tables.get("smoke", [])]
    if static:
        lines += [f"[papers.{pid}.impl.main.smoke.static]", 'reason = "a static check"',
                  f"command = {toml_str(touch)}", *static]
    return "\n".join(lines) + "\n\n"


@dataclass
class Run:
    returncode: int
    out: str
    results: dict[str, dict[str, Any]]
    markers: Path
    checkouts: Path


@pytest.fixture(scope="module")
def escapes(tmp_path_factory: pytest.TempPathFactory, uv_cache: Path) -> Run:  # noqa: F811
    root = tmp_path_factory.mktemp("escapes")
    home = root / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as scoped:  # conftest's isolation is per test: made here for the module
        for name, value in {**_GIT_ENV, "HOME": str(home), "UV_CACHE_DIR": str(uv_cache)}.items():
            scoped.setenv(name, value)
        return _check_all(root)


def _check_all(root: Path) -> Run:
    """The repository served, the registry written, one ``check --all`` run and its report read."""
    repos = RepoFactory(root / "git")
    repos.create("escapes", {"pkg/mod.py": "x = 1\n", "requirements.txt": ""})
    work = repos.work_tree("escapes")
    for name, target in (("etc", "/etc"), ("passwd", "/etc/passwd"), ("up", "../.."), ("here", ".")):
        (work / name).symlink_to(target)
    sha = repos.commit("escapes", {}, "the ways out")
    daemon = GitDaemon(repos.bare)
    daemon.start()
    try:
        markers, registry = root / "markers", root / "registry"
        markers.mkdir()
        (registry / "patches").mkdir(parents=True)
        text = "format = 1\n\n" + _entry(INSIDE, daemon.url("escapes"), sha, markers, None)
        for pid, case in CASES.items():
            text += _entry(pid, daemon.url("escapes"), sha, markers, case)
            if case.patch:
                (registry / "patches" / f"{pid}.patch").write_text(NEW_FILE_PATCH.format(case.patch))
        (registry / "registry.toml").write_text(text)
        env = {**os.environ, "AWREPRO_SANDBOX": "fallback"}
        for name in ("AWREPRO_CACHE_DIR", "AWREPRO_REGISTRY", "AWREPRO_MIRROR", "GITHUB_STEP_SUMMARY"):
            env.pop(name, None)
        cache = root / "cache"
        done = subprocess.run([sys.executable, "-m", "awrepro", "--registry", str(registry / "registry.toml"),
                               "--cache-dir", str(cache), "check", "--all", "-j", "2", "--json", str(root / "r.json")],
                              capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
        results = {r["id"]: r for r in load_json(root / "r.json")["results"]}
        return Run(done.returncode, done.stdout + done.stderr, results, markers, cache / "checkouts")
    finally:
        daemon.stop()


def test_a_path_that_stays_inside_through_a_symlink_runs(escapes: Run) -> None:
    assert escapes.results[INSIDE]["status"] == "passed", escapes.out
    assert (escapes.markers / INSIDE).exists()  # a smoke test that runs leaves its marker
    assert escapes.returncode == 1, escapes.out  # the refusals below are failures, as any fetch error


@pytest.mark.parametrize("pid", list(CASES))
def test_a_path_leading_out_of_the_checkout_is_refused_before_anything_runs(escapes: Run, pid: str) -> None:
    case = CASES[pid]
    [line] = [m.group(0) for m in result_lines(escapes.out) if m["id"] == pid]
    target = case.target.replace("CHECKOUTS", re.escape(str(escapes.checkouts)))
    message = rf"refusing {re.escape(case.key)} {re.escape(repr(case.value))}: it leads outside the checkout \(to {target}\)"
    assert re.fullmatch(rf"{pid}  {case.status}  \d+\.\ds  {message}", line), line
    assert re.fullmatch(message, escapes.results[pid]["note"]), escapes.results[pid]
    assert not (escapes.markers / pid).exists()  # no setup step, smoke test or static check ran
    assert not Path("/etc/awrepro-escape").exists()
