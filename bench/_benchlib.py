"""Shared helpers of the benchmark scripts in bench/ (not a benchmark itself).

Every benchmark runs awrepro as a child process with the interpreter it was started with
(``python bench/NAME.py`` from a venv where awrepro is installed), alternates it with the
raw tool doing the same work, and prints medians and ratios. Targets are printed as
PASS/MISS and never change the exit code: the scripts always exit 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


# ---------------------------------------------------------------- the programs under test


def awrepro_cmd() -> list[str]:
    """``awrepro`` as a user runs it: the console script next to this interpreter, else ``-m awrepro``."""
    script = Path(sys.executable).parent / "awrepro"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "awrepro"]


def check_awrepro_importable() -> str:
    done = subprocess.run([sys.executable, "-c", "import awrepro, sys; print(awrepro.__version__, awrepro.__file__)"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"awrepro is not installed for {sys.executable}; run this script with the python of a venv "
                         f"where it is (e.g. /tmp/venv/bin/python bench/NAME.py)\n{done.stderr.strip()}")
    return done.stdout.strip()


def uv_bin() -> str:
    done = subprocess.run([sys.executable, "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError("the uv package is not installed for this interpreter")
    return done.stdout.strip()


def base_environ(**extra: str) -> dict[str, str]:
    """This process's environment without AWREPRO_* settings, a fixed terminal width, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWREPRO_")}
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


class BenchError(RuntimeError):
    pass


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` with output captured; a failure raises BenchError with the output's tail."""
    done = subprocess.run(list(cmd), env=dict(env) if env is not None else None, cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BenchError(f"command failed (exit {done.returncode}): {' '.join(map(str, cmd))}\n{tail}")
    return done


def timed(cmd: Sequence[str], **kwargs: object) -> float:
    """Wall time of one run of ``cmd`` (it must succeed)."""
    return timed_run(cmd, **kwargs)[0]


def timed_run(cmd: Sequence[str], **kwargs: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time and result of one run of ``cmd`` (it must succeed)."""
    started = time.perf_counter()
    done = run(cmd, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, done


def alternate(cases: Mapping[str, Callable[[], float]], repeat: int, *, label: str = "",
              limits: Mapping[str, int] | None = None) -> dict[str, list[float]]:
    """Run the cases round-robin (A, B, A, B, ...) ``repeat`` times; each returns the seconds it measured.

    A case named in ``limits`` takes part only in that many rounds (the first ones).
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for index in range(repeat):
        ran = []
        for name, case in cases.items():
            if limits and index >= limits.get(name, repeat):
                continue
            samples[name].append(case())
            ran.append(f"{name} {samples[name][-1]:.3f}s")
        progress(f"{label} round {index + 1}/{repeat}: " + ", ".join(ran))
    return {name: values for name, values in samples.items() if values}


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- output


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print()
    print(title)
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def timing_rows(samples: Mapping[str, Sequence[float]]) -> list[list[object]]:
    """Rows of (what, median, min, max, n) for ``print_table``."""
    return [[name, fmt_seconds(median(v)), fmt_seconds(min(v)), fmt_seconds(max(v)), len(v)] for name, v in samples.items()]


TIMING_HEADERS = ("what", "median", "min", "max", "n")
RATIO_HEADERS = ("ratio", "value", "target", "verdict")


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def ratio_row(name: str, value: float, target: float | None, unit: str = "x") -> list[object]:
    shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:.3f} {unit}"
    if target is None:
        return [name, shown, "(info)", ""]
    bound = f"<= {target:.2f}{unit}" if unit == "x" else f"<= {target:g} {unit}"
    return [name, shown, bound, verdict(value, target)]


def machine_note() -> str:
    load = os.getloadavg()
    return (f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            "(shared machine: other jobs add noise; compare ratios, not absolute times)")


# ---------------------------------------------------------------- scaffolding


def parser(doc: str | None, default_repeat: int) -> argparse.ArgumentParser:
    first = (doc or "").strip().splitlines()[0] if doc else None
    p = argparse.ArgumentParser(description=first)
    p.add_argument("--repeat", type=int, default=default_repeat, metavar="N",
                   help=f"measurements per case, alternated (default {default_repeat})")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    return p


def compile_awrepro() -> None:
    """Byte-compile awrepro as `pip install` does. In an editable checkout with
    PYTHONDONTWRITEBYTECODE set, every module changed since the last compile would otherwise be
    compiled again on every run, which no installed awrepro does; timings would measure that."""
    import awrepro

    package = Path(awrepro.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=False)
    print(f"  .. byte-compiled {package} (as an installed awrepro is)", file=sys.stderr)


def main_wrapper(body: Callable[[Path], None], keep: bool) -> int:
    """Run ``body(tmp)`` in a fresh temporary folder; always exit 0 (errors are printed, never asserted)."""
    tmp = Path(tempfile.mkdtemp(prefix="awrepro-bench-"))
    try:
        compile_awrepro()
        body(tmp)
    except BenchError as exc:
        print(f"\nBENCH ERROR: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except Exception:  # noqa: BLE001 (a broken benchmark is reported, never an exit code)
        print("\nBENCH ERROR (bug in the benchmark):\n" + traceback.format_exc(), file=sys.stderr)
    finally:
        for cleanup in reversed(_cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001
                pass
        if keep:
            print(f"(kept {tmp})", file=sys.stderr)
        else:
            rmtree(tmp)
    return 0


_cleanups: list[Callable[[], None]] = []


def on_exit(cleanup: Callable[[], None]) -> None:
    _cleanups.append(cleanup)


def rmtree(path: Path) -> None:
    def writable(func, target, _exc):  # noqa: ANN001 (git's read-only pack files)
        try:
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass

    if path.exists():
        shutil.rmtree(path, onerror=writable)


def du_bytes(*paths: Path) -> int:
    """Disk usage of ``paths`` together (one ``du`` call, so a hard-linked file counts once)."""
    done = run(["du", "-s", "--block-size=1", "-c", *map(str, paths)])
    return int(done.stdout.strip().splitlines()[-1].split()[0])


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


# ---------------------------------------------------------------- git repositories and git daemon


def git(*args: str, cwd: Path | None = None, input_bytes: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, input=input_bytes, capture_output=True,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"})
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


class FastImport:
    """Build a bare repository quickly with ``git fast-import`` (a linear history on ``main``)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.count = 0
        self.when = 1_600_000_000

    def commit(self, files: Mapping[str, bytes | None], message: str, *, executable: Sequence[str] = ()) -> None:
        self.count += 1
        self.when += 3600
        body = message.encode()
        parts = [b"commit refs/heads/main\n", f"mark :{self.count}\n".encode(),
                 f"committer Bench <bench@example.invalid> {self.when} +0000\n".encode(),
                 f"data {len(body)}\n".encode(), body, b"\n"]
        if self.count > 1:
            parts.append(f"from :{self.count - 1}\n".encode())
        for path, content in files.items():
            if content is None:
                parts.append(f"D {path}\n".encode())
                continue
            mode = "100755" if path in executable else "100644"
            parts += [f"M {mode} inline {path}\n".encode(), f"data {len(content)}\n".encode(), content, b"\n"]
        parts.append(b"\n")
        self.chunks.append(b"".join(parts))

    def write(self, bare: Path) -> str:
        """Create ``bare`` holding the history; return the tip commit's sha."""
        git("init", "-q", "--bare", "-b", "main", str(bare))
        git("fast-import", "--quiet", cwd=bare, input_bytes=b"".join(self.chunks) + b"done\n")
        git("repack", "-adq", cwd=bare)
        return git("rev-parse", "refs/heads/main", cwd=bare)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """``git daemon`` serving a folder of bare repositories on 127.0.0.1 only; stopped at exit."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}", "--listen=127.0.0.1",
             f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        on_exit(self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError("git daemon did not start")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------- registries


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def entry_toml(paper_id: str, *, git_url: str, commit: str, smoke: Mapping[str, object],
               env: Mapping[str, object] | None = None, subdir: str | None = None,
               sparse: Sequence[str] = (), impl: str = "main", section: str = "Bench") -> str:
    """One paper with one implementation, in the registry format (docs/registry-format.md)."""
    lines = [f"[papers.{paper_id}]", f'title = "Benchmark entry {paper_id}"', 'venue = "Bench"', "year = 2024",
             f"section = {toml_value(section)}", "", f"[papers.{paper_id}.impl.{impl}.code]",
             f"git = {toml_value(git_url)}", f"commit = {toml_value(commit)}"]
    if subdir:
        lines.append(f"subdir = {toml_value(subdir)}")
    if sparse:
        lines.append(f"sparse = {toml_value(list(sparse))}")
    lines += ["", f"[papers.{paper_id}.impl.{impl}.env]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in (env or {}).items()]
    lines += ["", f"[papers.{paper_id}.impl.{impl}.smoke]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in smoke.items()]
    return "\n".join(lines) + "\n"


def write_registry(path: Path, entries: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('format = 1\n\n[defaults.env]\npython = "==3.11.*"\nbackend = "uv"\n\n' + "\n".join(entries))
    return path


def warm_registry_memo(registries: Path | Sequence[Path], env: Mapping[str, str]) -> Path:
    """Validate the registries once into a scratch cache; return its ``registry/`` memo folder to copy around."""
    paths = [registries] if isinstance(registries, Path) else list(registries)
    cache = Path(tempfile.mkdtemp(prefix="memo-", dir=paths[0].parent))
    for registry in paths:
        run([*awrepro_cmd(), "--registry", str(registry), "--cache-dir", str(cache), "list"], env=env)
    memo = cache / "registry"
    if len(list(memo.glob("*.json"))) < len(paths):
        raise BenchError(f"awrepro did not write its validated-registry memo under {memo}")
    return memo


def fresh_cache(parent: Path, memo: Path | None) -> Path:
    """A new empty cache folder; with ``memo``, the registry's validated JSON is already there."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=parent))
    if memo is not None:
        shutil.copytree(memo, cache / "registry")
    return cache


MEMORY_WRAPPER = """\
import atexit, resource, sys
_out = sys.argv.pop(1)
def _dump():
    with open(_out, "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(_dump)
from awrepro.cli import main
sys.exit(main())
"""


def run_with_peak_memory(args: Sequence[str], tmp: Path, **kwargs: object) -> tuple[float, int, str]:
    """Run awrepro ARGS; return (wall seconds, peak RSS in KiB of the awrepro process itself, children
    excluded, its stdout)."""
    wrapper = tmp / "awrepro_peak_rss.py"
    if not wrapper.exists():
        wrapper.write_text(MEMORY_WRAPPER)
    out = tmp / "peak_rss.txt"
    started = time.perf_counter()
    done = run([sys.executable, str(wrapper), str(out), *args], **kwargs)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    return wall, int(out.read_text()), done.stdout
