"""`awrepro fetch`, cold and warm, against raw git on the same local `git daemon`.

A repository with a realistic history is generated (about 3000 small .py files in nested
folders, a few hundred commits, built with `git fast-import`) and served by `git daemon` on
127.0.0.1 (nothing leaves the machine). Measured (medians, alternated in one run):
  * cold `awrepro fetch full` (a fresh --cache-dir each time, with the registry's validated
    JSON memo copied in beforehand, so validation is NOT counted)
        vs  raw `git init; git remote add origin URL; git fetch --depth 1 origin SHA;
             git checkout FETCH_HEAD` into a fresh folder
  * cold `awrepro fetch sparse`: an entry of the same repo with `subdir` + `sparse` naming two
    small folders: does a sparse checkout pay off against the full one?
  * warm `awrepro fetch full` (already cached)  vs  `awrepro --version`
Targets: cold <= 1.15x raw git; warm <= 1.1x `awrepro --version`. Prints PASS/MISS; always exits 0.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import _benchlib as b


def make_repo(bare: Path, n_files: int, n_commits: int) -> tuple[str, int]:
    """A bare repository with ``n_files`` small files and ``n_commits`` commits; returns (tip sha, files at tip)."""
    rng = random.Random(42)
    words = ("tensor", "layer", "model", "attention", "batch", "config", "loader", "train", "eval", "hidden",
             "embedding", "dropout", "optimizer", "schedule", "token", "mask", "head", "norm", "weight", "grad")

    def source(path: str, version: int) -> bytes:
        lines = [f'"""{path} (revision {version})."""', "", "import math", "import os", ""]
        for k in range(rng.randint(8, 30)):
            name = "_".join(rng.sample(words, 2))
            lines += [f"def {name}_{k}(x, scale={rng.random():.4f}):",
                      f"    # {' '.join(rng.choices(words, k=8))}",
                      f"    return [math.sqrt(abs(v)) * scale + {rng.randint(0, 999)} for v in x]", ""]
        return "\n".join(lines).encode()

    files: dict[str, bytes | None] = {}
    per_pkg = 12 * 10
    for i in range(n_files):
        files[f"src/pkg{i // per_pkg:02d}/mod{(i // 10) % 12:02d}/file{i % 10}.py"] = None
    for name in list(files):
        files[name] = source(name, 0)
    for i in range(5):
        files[f"configs/config{i}.yaml"] = f"name: config{i}\nlr: 0.{i + 1}\nlayers: {i + 2}\n".encode()
    for i in range(3):
        files[f"tools/tool{i}.py"] = source(f"tools/tool{i}.py", 0)
    files["README.md"] = b"# Benchmark repository\n"
    files["setup.py"] = b"from setuptools import setup\nsetup(name='bench')\n"

    stream = b.FastImport()
    stream.commit(files, "initial import")
    live = [p for p in files if p.startswith("src/")]
    for c in range(1, n_commits):
        change: dict[str, bytes | None] = {}
        for path in rng.sample(live, rng.randint(3, 12)):
            change[path] = source(path, c)
        if c % 25 == 0:  # now and then a file comes and another goes
            new = f"src/pkg{rng.randrange(25):02d}/extra/new{c}.py"
            change[new] = source(new, c)
            live.append(new)
            gone = live.pop(rng.randrange(len(live) - 1))
            change[gone] = None
        stream.commit(change, f"change {c}")
    return stream.write(bare), len(live) + 10


def count_files(tree: Path) -> int:
    return sum(1 for p in tree.rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts)


def body(tmp: Path, repeat: int, n_files: int, n_commits: int) -> None:
    print(__doc__.strip().splitlines()[0])
    print(f"awrepro {b.check_awrepro_importable()}  (run as: {' '.join(b.awrepro_cmd())})")
    print(b.machine_note())

    started = time.perf_counter()
    served = tmp / "served"
    sha, tip_files = make_repo(served / "bench.git", n_files, n_commits)
    pack_size = b.du_bytes(served / "bench.git")
    print(f"repository: {tip_files} files at the tip, {n_commits} commits, {b.human(pack_size)} on the server "
          f"(made in {time.perf_counter() - started:.1f} s)")
    daemon = b.GitDaemon(served)
    url = daemon.url("bench")

    registry = b.write_registry(tmp / "reg" / "registry.toml", [
        b.entry_toml("full", git_url=url, commit=sha, smoke={"command": "true"}),
        b.entry_toml("sparse", git_url=url, commit=sha, subdir="tools", sparse=["configs"], smoke={"command": "true"}),
    ])
    env = b.base_environ()
    memo = b.warm_registry_memo(registry, env)
    aw = [*b.awrepro_cmd(), "--registry", str(registry)]
    caches = tmp / "caches"
    caches.mkdir()

    def cold(entry: str) -> float:
        cache = b.fresh_cache(caches, memo)
        try:
            seconds, done = b.timed_run([*aw, "--cache-dir", str(cache), "fetch", entry], env=env)
            if "fetched" not in done.stdout:
                raise b.BenchError(f"a cold `awrepro fetch {entry}` did not fetch: {done.stdout.strip()}")
            return seconds
        finally:
            b.rmtree(cache)

    def raw_git() -> float:
        work = caches / "raw"
        started = time.perf_counter()
        b.run(["git", "init", "-q", str(work)], env=env)
        b.run(["git", "remote", "add", "origin", url], env=env, cwd=work)
        b.run(["git", "fetch", "-q", "--depth", "1", "origin", sha], env=env, cwd=work)
        b.run(["git", "checkout", "-q", "FETCH_HEAD"], env=env, cwd=work)
        elapsed = time.perf_counter() - started
        b.rmtree(work)
        return elapsed

    # Warm-up (server pack cache, page cache) and sizes of what each kind of fetch leaves behind.
    raw_git()
    sizes = {}
    for entry in ("full", "sparse"):
        cache = b.fresh_cache(caches, memo)
        b.run([*aw, "--cache-dir", str(cache), "fetch", entry], env=env)
        tree = next((cache / "checkouts").glob("*/bench"))
        sizes[entry] = (count_files(tree), b.du_bytes(cache / "checkouts"))
        b.rmtree(cache)

    cold_samples = b.alternate({
        "awrepro fetch (cold, full)": lambda: cold("full"),
        "raw git init+fetch+checkout": raw_git,
        "awrepro fetch (cold, sparse)": lambda: cold("sparse"),
    }, repeat, label="cold")

    warm_cache = b.fresh_cache(caches, memo)
    b.run([*aw, "--cache-dir", str(warm_cache), "fetch", "full"], env=env)
    warm_cmd = [*aw, "--cache-dir", str(warm_cache), "fetch", "full"]
    version_cmd = [*b.awrepro_cmd(), "--version"]
    if "cached" not in b.run(warm_cmd, env=env).stdout:
        raise b.BenchError("a second `awrepro fetch full` did not report the checkout as cached")
    b.run(version_cmd, env=env)
    warm_samples = b.alternate({
        "awrepro fetch (warm)": lambda: b.timed(warm_cmd, env=env),
        "awrepro --version": lambda: b.timed(version_cmd, env=env),
    }, max(repeat * 3, 10), label="warm")

    samples = {**cold_samples, **warm_samples}
    b.print_table("Wall time (git daemon on 127.0.0.1; cold = fresh cache, registry memo pre-copied: validation not counted)",
                  b.TIMING_HEADERS, b.timing_rows(samples))
    med = {name: b.median(v) for name, v in samples.items()}
    b.print_table("Ratios of medians", b.RATIO_HEADERS, [
        b.ratio_row("cold awrepro fetch / raw git", med["awrepro fetch (cold, full)"] / med["raw git init+fetch+checkout"], 1.15),
        b.ratio_row("warm awrepro fetch / awrepro --version", med["awrepro fetch (warm)"] / med["awrepro --version"], 1.1),
        b.ratio_row("cold sparse / cold full fetch", med["awrepro fetch (cold, sparse)"] / med["awrepro fetch (cold, full)"], None),
    ])
    b.print_table("Sparse checkout effect (awrepro cache after one fetch)", ("checkout", "files", "disk (checkouts/)"), [
        ["full", sizes["full"][0], b.human(sizes["full"][1])],
        ["subdir=tools, sparse=[configs]", sizes["sparse"][0], b.human(sizes["sparse"][1])],
    ])
    saved = med["awrepro fetch (cold, full)"] - med["awrepro fetch (cold, sparse)"]
    print(f"  sparse {'saves' if saved > 0 else 'costs'} {b.fmt_seconds(abs(saved))} per cold fetch "
          "(the same objects are fetched either way: only the checkout shrinks)")


def main() -> int:
    p = b.parser(__doc__, default_repeat=10)
    p.add_argument("--files", type=int, default=3000, help="files in the generated repository (default 3000)")
    p.add_argument("--commits", type=int, default=300, help="commits in its history (default 300)")
    args = p.parse_args()
    return b.main_wrapper(lambda tmp: body(tmp, args.repeat, args.files, args.commits), args.keep)


if __name__ == "__main__":
    sys.exit(main())
