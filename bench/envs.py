"""`awrepro setup` of a torch environment, cold and warm, against raw uv and venv + pip; disk of five torch envs.

The entry's env is `requirements = ["torch==2.13.0"]`: the CPU wheel of torch 2.13.0 lies in
/opt/wheels (named by pip's configuration, which awrepro's uv backend passes on to uv), its
dependencies in the local index file:///opt/pypi/simple. Nothing leaves the machine: every uv
call runs with UV_OFFLINE=1 and UV_DEFAULT_INDEX=file:///opt/pypi/simple, every pip call with
PIP_INDEX_URL=file:///opt/pypi/simple; a dry run first checks that torch==2.13.0+cpu from
/opt/wheels is what gets installed. The code is a tiny repository served by `git daemon`.
Measured (medians, alternated in one run):
  * cold `awrepro setup` (a fresh --cache-dir each time, code already fetched and the registry
    memo present, so only the environment is built; uv's cache UV_CACHE_DIR is shared with the
    raw uv runs, so both are equally warm)
        vs  raw `uv venv X && uv pip install --python X/bin/python --find-links /opt/wheels [the user's pip settings] torch==2.13.0`
        vs  raw `python -m venv X && X/bin/pip install torch==2.13.0`  (in the first --pip-repeat
            rounds only, 30-60 s each; --no-pip skips it)
  * warm `awrepro setup` (the environment exists)  vs  the raw uv install into an existing venv (a no-op)
  * disk: five torch environments of five different specs in ONE cache (`du` over envs/, a
    hard-linked file counted once) vs one environment
Targets: cold <= 1.2x raw uv and <= 0.25x venv+pip; warm <= 0.5 s; five envs <= 1.2x the disk of one.
Prints PASS/MISS; always exits 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _benchlib as b

TORCH = "torch==2.13.0"
WHEELS = "/opt/wheels"
LOCAL_INDEX = "file:///opt/pypi/simple"

# Five specs with five different environment keys (see envs.Plan.key) that install exactly the
# same packages: filelock and sympy are dependencies of torch anyway, and `vars` count only
# together with `steps`. No spec can pull another torch or anything from the network.
VARIANTS: dict[str, dict[str, object]] = {
    "t1": {"requirements": [TORCH]},
    "t2": {"requirements": [TORCH, "filelock"]},
    "t3": {"requirements": [TORCH, "sympy"]},
    "t4": {"requirements": [TORCH], "steps": ["true"]},
    "t5": {"requirements": [TORCH], "steps": ["true"], "vars": {"BENCH_VARIANT": "5"}},
}


def make_code_repo(served: Path) -> str:
    stream = b.FastImport()
    files: dict[str, bytes | None] = {"README.md": b"# tiny\n"}
    for name in VARIANTS:
        files[f"{name}/main.py"] = f"print('{name}')\n".encode()
    stream.commit(files, "tiny repository")
    return stream.write(served / "tiny.git")


def safety_check(tmp: Path, uv: str, uv_env: dict[str, str], pip_env: dict[str, str], with_pip: bool) -> None:
    """Dry runs: uv (with the options awrepro passes) and pip must pick torch 2.13.0+cpu and nothing else."""
    probe = tmp / "dry-run-venv"
    b.run([uv, "venv", "-q", "--python", sys.executable, str(probe)], env=uv_env)
    pip_config = b.run([sys.executable, "-m", "pip", "config", "list"], env=uv_env).stdout
    args = ["--find-links", WHEELS]
    if "/etc/xdg/pip/constraints.txt" in pip_config:
        args += ["--constraint", "/etc/xdg/pip/constraints.txt"]
    for index in ("/opt/pypi/simple", "/opt/pypi-more/simple"):
        if Path(index).is_dir():
            args += ["--extra-index-url", f"file://{index}"]
    out = b.run([uv, "pip", "install", "--dry-run", "--python", str(probe / "bin" / "python"), *args, TORCH],
                env=uv_env)
    text = out.stdout + out.stderr
    torches = [line.strip() for line in text.splitlines() if line.strip().startswith("+ torch==")]
    if torches != ["+ torch==2.13.0+cpu"]:
        raise b.BenchError(f"uv would install {torches or 'no torch'}, not torch==2.13.0+cpu: refusing to go on\n{text}")
    b.progress("dry run: uv picks torch==2.13.0+cpu")
    if with_pip:
        b.run([sys.executable, "-m", "venv", str(probe / "pipvenv")])
        out = b.run([str(probe / "pipvenv" / "bin" / "pip"), "install", "--dry-run", TORCH], env=pip_env)
        wanted = [w for line in out.stdout.splitlines() if line.startswith("Would install") for w in line.split()
                  if w.startswith("torch-")]
        if wanted != ["torch-2.13.0+cpu"]:
            raise b.BenchError(f"pip would install {wanted or 'no torch'}, not torch-2.13.0+cpu: refusing to go on\n{out.stdout}")
        b.progress("dry run: pip picks torch-2.13.0+cpu")
    b.rmtree(probe)



def body(tmp: Path, repeat: int, pip_repeat: int) -> None:
    with_pip = pip_repeat > 0
    print(__doc__.strip().splitlines()[0])
    print(f"awrepro {b.check_awrepro_importable()}  (run as: {' '.join(b.awrepro_cmd())})")
    print(b.machine_note())
    uv = b.uv_bin()
    uv_cache = tmp / "uv-cache"
    uv_env = b.base_environ(UV_CACHE_DIR=str(uv_cache), UV_OFFLINE="1", UV_DEFAULT_INDEX=LOCAL_INDEX)
    uv_env.pop("PIP_INDEX_URL", None)
    pip_env = b.base_environ(PIP_INDEX_URL=LOCAL_INDEX)
    safety_check(tmp, uv, uv_env, pip_env, with_pip)

    served = tmp / "served"
    sha = make_code_repo(served)
    daemon = b.GitDaemon(served)
    url = daemon.url("tiny")
    registry = b.write_registry(tmp / "reg" / "registry.toml", [
        b.entry_toml(name, git_url=url, commit=sha, subdir=name, env=spec, smoke={"command": "true"})
        for name, spec in VARIANTS.items()
    ])
    memo = b.warm_registry_memo(registry, uv_env)
    aw = [*b.awrepro_cmd(), "--registry", str(registry)]
    caches = tmp / "caches"
    caches.mkdir()

    # Warm uv's cache once (unpacks the torch wheel), untimed; then check what awrepro builds.
    started = time.perf_counter()
    warm_cache = b.fresh_cache(caches, memo)
    b.run([*aw, "--cache-dir", str(warm_cache), "setup", "t1"], env=uv_env)
    env_dirs = [p for p in (warm_cache / "envs").iterdir() if p.is_dir()]
    version = b.run([str(env_dirs[0] / "bin" / "python"), "-c",
                     "import importlib.metadata as m; print(m.version('torch'))"]).stdout.strip()
    if version != "2.13.0+cpu":
        raise b.BenchError(f"awrepro built an environment with torch {version!r}, not 2.13.0+cpu")
    b.progress(f"first awrepro setup (fills uv's cache) took {time.perf_counter() - started:.1f} s; torch {version}")
    one_env = env_dirs[0]

    def cold_awrepro() -> float:
        cache = b.fresh_cache(caches, memo)
        try:
            b.run([*aw, "--cache-dir", str(cache), "fetch", "t1"], env=uv_env)  # code: untimed
            seconds, done = b.timed_run([*aw, "--cache-dir", str(cache), "setup", "t1"], env=uv_env)
            if "built in" not in done.stdout:
                raise b.BenchError(f"a cold `awrepro setup t1` did not build an environment: {done.stdout.strip()}")
            return seconds
        finally:
            b.rmtree(cache)

    # The same work: awrepro's uv backend passes on the user's pip settings (find-links, index
    # URLs, constraints), so the raw uv install gets them too, read the way awrepro reads them.
    user_args = b.run([sys.executable, "-c", "from awrepro.envs.base import user_pip_settings; "
                       "print(chr(10).join(user_pip_settings().as_args()))"], env=uv_env).stdout.split("\n")
    user_args = [arg for arg in user_args if arg]
    print(f"  .. raw uv gets the user's pip settings too: {' '.join(user_args) or '(none)'}", file=sys.stderr)

    def raw_uv() -> float:
        venv = caches / "raw-uv"
        started = time.perf_counter()
        b.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], env=uv_env)
        b.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "--find-links", WHEELS,
               *user_args, TORCH], env=uv_env)
        elapsed = time.perf_counter() - started
        b.rmtree(venv)
        return elapsed

    def raw_pip() -> float:
        venv = caches / "raw-pip"
        started = time.perf_counter()
        b.run([sys.executable, "-m", "venv", str(venv)], env=pip_env)
        b.run([str(venv / "bin" / "pip"), "install", "-q", TORCH], env=pip_env)
        elapsed = time.perf_counter() - started
        b.rmtree(venv)
        return elapsed

    raw_uv()  # warm-up
    cases = {"awrepro setup (cold)": cold_awrepro, "raw uv venv + install": raw_uv}
    if with_pip:
        cases["raw venv + pip install"] = raw_pip
    cold = b.alternate(cases, repeat, label="cold", limits={"raw venv + pip install": pip_repeat})

    # Warm: the environment exists.
    warm_cmd = [*aw, "--cache-dir", str(warm_cache), "setup", "t1"]
    if "ready" not in b.run(warm_cmd, env=uv_env).stdout:
        raise b.BenchError("a second `awrepro setup` did not report the environment as ready")
    noop_venv = caches / "noop-uv"
    b.run([uv, "venv", "-q", "--python", sys.executable, str(noop_venv)], env=uv_env)
    noop_cmd = [uv, "pip", "install", "-q", "--python", str(noop_venv / "bin" / "python"), "--find-links", WHEELS, TORCH]
    b.run(noop_cmd, env=uv_env)
    warm = b.alternate({
        "awrepro setup (warm)": lambda: b.timed(warm_cmd, env=uv_env),
        "raw uv install (no-op)": lambda: b.timed(noop_cmd, env=uv_env),
    }, max(repeat * 3, 10), label="warm")
    b.rmtree(noop_venv)

    # Disk: the other four specs join t1's environment in the same cache.
    started = time.perf_counter()
    b.run([*aw, "--cache-dir", str(warm_cache), "setup", "--all", "-j", "2"], env=uv_env)
    four_more = time.perf_counter() - started
    envs = sorted(p for p in (warm_cache / "envs").iterdir() if p.is_dir())
    one = b.du_bytes(one_env)
    five = b.du_bytes(warm_cache / "envs")
    with_uv_cache = b.du_bytes(warm_cache / "envs", uv_cache)

    samples = {**cold, **warm}
    b.print_table("Wall time (cold = fresh cache with the code fetched; uv's cache shared and warm)",
                  b.TIMING_HEADERS, b.timing_rows(samples))
    med = {name: b.median(v) for name, v in samples.items()}
    rows = [b.ratio_row("cold awrepro setup / raw uv", med["awrepro setup (cold)"] / med["raw uv venv + install"], 1.2)]
    if with_pip:
        rows.append(b.ratio_row("cold awrepro setup / venv+pip", med["awrepro setup (cold)"] / med["raw venv + pip install"], 0.25))
    rows += [
        b.ratio_row("warm awrepro setup (absolute)", med["awrepro setup (warm)"], 0.5, unit="s"),
        b.ratio_row("warm awrepro setup / raw uv no-op", med["awrepro setup (warm)"] / med["raw uv install (no-op)"], None),
        b.ratio_row(f"disk of {len(envs)} torch envs / one", five / one, 1.2),
    ]
    b.print_table("Ratios of medians", b.RATIO_HEADERS, rows)
    b.print_table("Disk (du, a hard-linked file counted once)", ("what", "size"), [
        ["one torch environment", b.human(one)],
        [f"{len(envs)} torch environments (envs/)", b.human(five)],
        [f"{len(envs)} environments + uv's cache", b.human(with_uv_cache)],
    ])
    print(f"  (the other {len(envs) - 1} environments were built by one `setup --all -j 2` in {four_more:.1f} s)")


def main() -> int:
    p = b.parser(__doc__, default_repeat=5)
    p.add_argument("--pip-repeat", type=int, default=2, metavar="N",
                   help="rounds that also run the venv + pip baseline, 30-60 s each (default 2; 0 skips it)")
    p.add_argument("--no-pip", action="store_true", help="skip the venv + pip baseline (same as --pip-repeat 0)")
    args = p.parse_args()
    pip_repeat = 0 if args.no_pip else min(args.pip_repeat, args.repeat)
    return b.main_wrapper(lambda tmp: body(tmp, args.repeat, pip_repeat), args.keep)


if __name__ == "__main__":
    sys.exit(main())
