"""`awrepro check --all -j 2`: schedule quality, per-entry overhead and memory, against a plain xargs -P 2.

One small repository (folders e000..e199, each with a run.sh that sleeps for its first argument)
is served by `git daemon` on 127.0.0.1; every entry uses it at another `subdir`, and all share
one trivial environment (no requirements: one bare venv).
Measured (medians, alternated in one run):
  * makespan: 20 entries whose smoke tests sleep 0.2-3 s (listed shortest first, the worst order
    for a scheduler that keeps registry order). Code and environment are ready (`setup --all`,
    untimed); then `check --all -j 2` twice in the same cache: the first run has no recorded
    durations, the second schedules longest first from them. Wall time / ideal makespan, where
    ideal = max(longest job, sum of jobs / 2); also the LPT schedule's makespan, and the same
    sleeps run by `xargs -P 2` in LPT order as the raw-tool baseline.
  * overhead: instant smoke tests (`true`), everything cached and with history: wall time /
    entries at 20 and 200 entries (xargs -P 2 running `true` in the same folders is the baseline),
    and the peak RSS of the awrepro process itself (children not counted) at 200 vs 20 entries.
Targets: second-run wall / ideal <= 1.1x; overhead <= 0.15 s per entry at 20 and at 200 entries
(flat); peak memory at 200 entries <= 1.2x that at 20. Prints PASS/MISS; always exits 0.
"""

from __future__ import annotations

import heapq
import random
import sys
from pathlib import Path

import _benchlib as b

JOBS = 2
RUN_SH = b'#!/bin/sh\nsleep "${1:-0}"\n'


def sleeps(count: int = 20) -> list[float]:
    """Known durations between 0.2 and 3 s, shortest first."""
    rng = random.Random(7)
    values = [round(rng.uniform(0.2, 3.0), 1) for _ in range(count - 2)] + [0.2, 3.0]
    return sorted(values)


def lpt_makespan(durations: list[float], machines: int) -> float:
    loads = [0.0] * machines
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def ordered_makespan(durations: list[float], machines: int) -> float:
    """List scheduling in the given order (what a scheduler without history does)."""
    loads = [0.0] * machines
    for d in durations:
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


def make_repo(served: Path, folders: int) -> str:
    stream = b.FastImport()
    files: dict[str, bytes | None] = {"README.md": b"# check benchmark\n"}
    names = [f"e{i:03d}/run.sh" for i in range(folders)]
    files.update(dict.fromkeys(names, RUN_SH))
    stream.commit(files, "entries", executable=names)
    return stream.write(served / "entries.git")


def xargs(lines: list[str]) -> list[str]:
    """Run `sh -c 'cd DIR && ./run.sh SECONDS'` (or `true`) for each 'DIR SECONDS' line, JOBS at a time."""
    return ["sh", "-c", f"printf '%s\\n' \"$@\" | xargs -P {JOBS} -L 1 sh -c 'cd \"$0\" && exec \"$@\"' ", "_", *lines]


def all_passed(stdout: str, count: int) -> None:
    """The check's summary line must say that every entry passed (a skipped entry would fake speed)."""
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    if last.strip() != f"{count} passed":
        raise b.BenchError(f"expected `{count} passed` from awrepro check, got: {last!r}")


def body(tmp: Path, repeat: int, many: int) -> None:
    print(__doc__.strip().splitlines()[0])
    print(f"awrepro {b.check_awrepro_importable()}  (run as: {' '.join(b.awrepro_cmd())})")
    print(b.machine_note())

    served = tmp / "served"
    sha = make_repo(served, max(many, 20))
    daemon = b.GitDaemon(served)
    url = daemon.url("entries")
    jobs = sleeps(20)

    def registry(name: str, commands: list[str]) -> Path:
        return b.write_registry(tmp / name / "registry.toml", [
            b.entry_toml(f"p{i:03d}", git_url=url, commit=sha, subdir=f"e{i:03d}",
                         smoke={"command": command, "timeout": 120})
            for i, command in enumerate(commands)
        ])

    sleepy = registry("sleepy", [f"./run.sh {d}" for d in jobs])
    instant20 = registry("instant20", ["true"] * 20)
    instant_many = registry("instant-many", ["true"] * many)
    env = b.base_environ(UV_OFFLINE="1")
    memo = b.warm_registry_memo([sleepy, instant20, instant_many], env)
    caches = tmp / "caches"
    caches.mkdir()

    def awrepro_args(reg: Path, cache: Path, *args: str) -> list[str]:
        return ["--registry", str(reg), "--cache-dir", str(cache), *args]

    def awrepro(reg: Path, cache: Path, *args: str) -> list[str]:
        return [*b.awrepro_cmd(), *awrepro_args(reg, cache, *args)]

    # ------------------------------------------------------------ makespan
    ideal = max(max(jobs), sum(jobs) / JOBS)
    lpt = lpt_makespan(jobs, JOBS)
    in_order = ordered_makespan(jobs, JOBS)

    def checkout_root(cache: Path) -> Path:
        return next((cache / "checkouts").glob("*/entries"))

    runs: dict[str, list[float]] = {"awrepro check, 1st run (no history)": [], "awrepro check, 2nd run (history)": [],
                                    "xargs -P 2, LPT order": []}
    for index in range(repeat):
        cache = b.fresh_cache(caches, memo)
        b.run(awrepro(sleepy, cache, "setup", "--all", "-j", str(JOBS)), env=env)  # code + env: untimed
        for name in ("awrepro check, 1st run (no history)", "awrepro check, 2nd run (history)"):
            seconds, done = b.timed_run(awrepro(sleepy, cache, "check", "--all", "-j", str(JOBS)), env=env)
            all_passed(done.stdout, len(jobs))
            runs[name].append(seconds)
        root = checkout_root(cache)
        lines = [f"{root / f'e{i:03d}'} ./run.sh {d}" for i, d in sorted(enumerate(jobs), key=lambda p: -p[1])]
        runs["xargs -P 2, LPT order"].append(b.timed(xargs(lines)))
        b.rmtree(cache)
        b.progress(f"makespan round {index + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in runs.items()))

    # ------------------------------------------------------------ overhead and memory
    cache = b.fresh_cache(caches, memo)
    for reg, count in ((instant20, 20), (instant_many, many)):  # code, env and a first history: untimed
        all_passed(b.run(awrepro(reg, cache, "check", "--all", "-j", str(JOBS)), env=env).stdout, count)
    root = checkout_root(cache)
    peaks: dict[int, list[int]] = {20: [], many: []}

    def checked(reg: Path, count: int) -> float:
        wall, peak, stdout = b.run_with_peak_memory(awrepro_args(reg, cache, "check", "--all", "-j", str(JOBS)), tmp, env=env)
        all_passed(stdout, count)
        peaks[count].append(peak)
        return wall

    def raw(count: int) -> float:
        return b.timed(xargs([f"{root / f'e{i:03d}'} true" for i in range(count)]))

    overhead = b.alternate({
        "awrepro check, 20 x `true`": lambda: checked(instant20, 20),
        "xargs -P 2, 20 x `true`": lambda: raw(20),
        f"awrepro check, {many} x `true`": lambda: checked(instant_many, many),
        f"xargs -P 2, {many} x `true`": lambda: raw(many),
    }, max(repeat, 3), label="overhead")

    # ------------------------------------------------------------ report
    samples = {**runs, **overhead}
    b.print_table(f"Wall time (-j {JOBS})", b.TIMING_HEADERS, b.timing_rows(samples))
    med = {name: b.median(v) for name, v in samples.items()}
    b.print_table(f"Makespan of the 20 sleeps (sum {sum(jobs):.1f} s, longest {max(jobs):.1f} s)", ("schedule", "seconds", "/ ideal"), [
        ["ideal lower bound max(longest, sum/2)", f"{ideal:.2f}", "1.00x"],
        ["LPT (longest first)", f"{lpt:.2f}", f"{lpt / ideal:.2f}x"],
        ["registry order (shortest first)", f"{in_order:.2f}", f"{in_order / ideal:.2f}x"],
    ])
    per20 = med["awrepro check, 20 x `true`"] / 20
    per_many = med[f"awrepro check, {many} x `true`"] / many
    peak20, peak_many = b.median(peaks[20]), b.median(peaks[many])
    b.print_table("Ratios of medians", b.RATIO_HEADERS, [
        b.ratio_row("2nd check run / ideal", med["awrepro check, 2nd run (history)"] / ideal, 1.1),
        b.ratio_row("1st check run / ideal", med["awrepro check, 1st run (no history)"] / ideal, None),
        b.ratio_row("xargs LPT / ideal", med["xargs -P 2, LPT order"] / ideal, None),
        b.ratio_row("2nd check run / xargs LPT", med["awrepro check, 2nd run (history)"] / med["xargs -P 2, LPT order"], None),
        b.ratio_row("awrepro per entry, 20 entries", per20, 0.15, unit="s"),
        b.ratio_row(f"awrepro per entry, {many} entries", per_many, 0.15, unit="s"),
        b.ratio_row(f"per entry {many} / per entry 20", per_many / per20, None),
        b.ratio_row("awrepro per entry / xargs per entry, 20", per20 / (med["xargs -P 2, 20 x `true`"] / 20), None),
        b.ratio_row(f"awrepro per entry / xargs per entry, {many}",
                    per_many / (med[f"xargs -P 2, {many} x `true`"] / many), None),
        b.ratio_row(f"peak RSS {many} / 20 entries", peak_many / peak20, 1.2),
    ])
    print(f"  peak RSS of the awrepro process (ru_maxrss, children excluded): "
          f"20 entries {peak20 / 1024:.1f} MiB, {many} entries {peak_many / 1024:.1f} MiB")


def main() -> int:
    p = b.parser(__doc__, default_repeat=2)
    p.add_argument("--entries", type=int, default=200, help="entries of the large overhead run (default 200)")
    args = p.parse_args()
    return b.main_wrapper(lambda tmp: body(tmp, args.repeat, args.entries), args.keep)


if __name__ == "__main__":
    sys.exit(main())
