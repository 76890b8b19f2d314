"""A reader that goes away (`awrepro list | head -1`) ends the command quietly, never with exit 1
(a failed check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("args", [("list",), ("list", "--json"), ("show", "longformer"), ("status",)])
def test_a_closed_stdout_ends_quietly_with_141(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = {**os.environ, "AWREPRO_CACHE_DIR": str(tmp_path / "cache")}
    child = subprocess.Popen([sys.executable, "-m", "awrepro", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # nobody reads: awrepro's first write meets a closed pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141, err
    assert err == ""


def test_list_piped_into_head_never_exits_1(tmp_path: Path) -> None:
    env = {**os.environ, "AWREPRO_CACHE_DIR": str(tmp_path / "cache")}
    script = f"for i in 1 2 3 4 5; do {sys.executable} -m awrepro list | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}; done"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    codes = done.stdout.split()
    assert len(codes) == 5 and set(codes) <= {"0", "141"}, (codes, done.stderr)
    assert done.stderr == ""
