"""Hostile registries are refused fast: exit 2, one located line per problem, never a hang or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry_samples import VALID

COMMIT = 'commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"'
IMPL = "papers.longformer.impl.allenai"


def _validate(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real process with a deadline: a registry that blocks must fail the test, not hang it."""
    return subprocess.run([sys.executable, "-m", "awrepro", "--registry", str(path), "validate"], cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def _errors(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line.removeprefix("error: ") for line in err.splitlines() if line.startswith("error: ")]


def test_files_that_are_not_regular_files_are_refused_at_once(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.toml"
    loop.symlink_to(tmp_path / "loop2.toml")
    (tmp_path / "loop2.toml").symlink_to(loop)
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    for path, reason in ((fifo, "not a registry file: it is a FIFO, not a regular file"),
                         (Path("/dev/zero"), "not a registry file: it is a device, not a regular file"),
                         (folder, "not a registry file: it is a folder, not a regular file"),
                         (loop, "cannot read the registry: a loop of symbolic links"),
                         (huge, "the registry is 67108864 bytes, over the 33554432-byte limit")):
        done = _validate(path, work)
        assert done.returncode == 2, (path, done.stderr)
        assert _errors(done.stderr) == [f"{path}: {reason}"]


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{ a = " * 5000 + "1" + " }" * 5000])
def test_deep_nesting_is_a_message_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(VALID + f"\n[papers.longformer.impl.allenai.env.vars]\nX = {nested}\n")
    done = _validate(path, tmp_path)
    assert done.returncode == 2, done.stderr
    assert _errors(done.stderr) == [f"registry.toml: invalid TOML: arrays or inline tables nested too deep"]


def test_every_problem_of_a_large_registry_is_located(cli, tmp_path: Path) -> None:  # noqa: ANN001
    """The key index is built once per text; each of many problems still gets its own line: the key
    itself (a short commit), the table it belongs in (a missing key) or the nearest parent table."""
    lines = ["format = 1", ""]
    expected = []
    for index in range(500):
        lines += [f"[papers.p{index}]"]
        table_line = len(lines)
        lines += ['venue = "arXiv"', "year = 2020", 'section = "Tests"', "",
                  f"[papers.p{index}.impl.main.code]", f'git = "https://example.org/o/r{index}"']
        lines.append('commit = "0123abc"')
        commit_line = len(lines)
        lines += [f"[papers.p{index}.impl.main.smoke]", 'command = "true"', ""]
        expected.append(f"registry.toml:{table_line}: papers.p{index}.title: missing required key 'title'")
        expected.append(f"registry.toml:{commit_line}: papers.p{index}.impl.main.code.commit: "
                        "must be a full 40-character commit hash (tags and branches move)")
    (tmp_path / "registry.toml").write_text("\n".join(lines) + "\n")
    done = cli("--registry", str(tmp_path / "registry.toml"), "validate", cwd=tmp_path)
    assert done.code == 2, done.err[-2000:]
    assert sorted(_errors(done.err)) == sorted(expected)


def _one(cli, tmp_path: Path, old: str, new: str) -> list[str]:  # noqa: ANN001
    assert old in VALID, old
    (tmp_path / "registry.toml").write_text(VALID.replace(old, new))
    done = cli("--registry", str(tmp_path / "registry.toml"), "validate", cwd=tmp_path)
    assert done.code == 2, done.out + done.err
    return _errors(done.err)


CASES = [
    (COMMIT, 'commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca\\n"',
     f"registry.toml:30: {IMPL}.code.commit: must be a full 40-character commit hash (tags and branches move)"),
    ("command = \"python -c 'import longformer'\"", 'command = "true\\u0000; rm -rf ~"',
     f"registry.toml:37: {IMPL}.smoke.command: contains a NUL byte"),
    ('requirements = ["torch==2.13.0"]', 'vars = { A = "x\\u0000y" }',
     f"registry.toml:34: {IMPL}.env.vars.A: contains a NUL byte"),
    ("official = true", 'official = true\nsubdir = "src\\u0000"',
     f"registry.toml:32: {IMPL}.code.subdir: contains a NUL byte"),
    ('requirements = ["torch==2.13.0"]', 'vars = { "A\\nB" = "x" }',
     f"registry.toml:34: {IMPL}.env.vars.A\\nB: 'A\\nB' is not a valid environment variable name"),
    ('requirements = ["torch==2.13.0"]', 'python = ",,,"',
     f"registry.toml:34: {IMPL}.env.python: ',,,' is not a version constraint like '==3.11.*' or '>=3.9,<3.12'"),
    ('requirements = ["torch==2.13.0"]', 'python = "   "',
     f"registry.toml:34: {IMPL}.env.python: '   ' is not a version constraint like '==3.11.*' or '>=3.9,<3.12'"),
    ("command = \"python -c 'import longformer'\"", 'command = "true"\ntimeout = 100000000000000000000000000',
     f"registry.toml:38: {IMPL}.smoke.timeout: must be at most 604800 seconds (7 days), got 100000000000000000000000000"),
    ('git = "https://github.com/allenai/longformer"', 'git = "-u@x:y"',
     f"registry.toml:29: {IMPL}.code.git: '-u@x:y' is not a git URL: it starts with '-' or holds spaces or control characters"),
    ('requirements = ["torch==2.13.0"]', 'exclude_newer_exempt = ["numpy\\n"]',
     f"registry.toml:34: {IMPL}.env.exclude_newer_exempt: 'numpy\\n' is not a distribution name, or NAME=YYYY-MM-DD"),
    ("official = true", "official = true\nmax_unpacked_mib = 0",
     f"registry.toml:32: {IMPL}.code.max_unpacked_mib: must be greater than 0, got 0"),
    ("official = true", "official = true\nmax_members = 1000",
     f"registry.toml:28: {IMPL}.code: max_unpacked_mib and max_members belong to an archive source"),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES, ids=[c[2].split(": ")[1] for c in CASES])
def test_values_the_schema_refuses(cli, tmp_path: Path, old: str, new: str, expected: str) -> None:  # noqa: ANN001
    errors = _one(cli, tmp_path, old, new)
    assert errors == [expected], errors


def test_every_bad_variable_name_and_sparse_path_is_reported(cli, tmp_path: Path) -> None:  # noqa: ANN001
    errors = _one(cli, tmp_path, 'requirements = ["torch==2.13.0"]',
                  'vars = { "1X" = "a", GOOD = "b", "BAD NAME" = "c" }')
    assert f"registry.toml:34: {IMPL}.env.vars.1X: '1X' is not a valid environment variable name" in errors
    assert f"registry.toml:34: {IMPL}.env.vars.BAD NAME: 'BAD NAME' is not a valid environment variable name" in errors
    errors = _one(cli, tmp_path, "official = true", 'official = true\nsparse = ["ok", "../a", "/b", "!../c"]')
    assert errors == [
        f"registry.toml:32: {IMPL}.code.sparse.1: a sparse path must stay inside the checkout: '..' is not allowed",
        f"registry.toml:32: {IMPL}.code.sparse.2: a sparse path must be a relative path, not '/b'",
        f"registry.toml:32: {IMPL}.code.sparse.3: a sparse path must stay inside the checkout: '..' is not allowed",
    ]
