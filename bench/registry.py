"""`awrepro validate` on a hostile registry: 5,000 papers with an error in each, located in linear time.

Measured (medians, alternated in one run):
  * `awrepro --registry R validate` on R, 5,000 papers each with a problem (a short commit, a
    missing key, an unknown key, a bad variable name, a bad sparse path, in turn): exit 2, one
    located line per problem  vs  `python -c "tomllib.loads(R)"`, parsing the same file.
  * the same with 1,000 papers, to show the cost grows linearly (ratio per paper ≈ 1).
Targets: 5,000 papers validate in under 10 s; seconds per paper at 5,000 ≤ 1.5x that at 1,000.
Prints PASS/MISS; always exits 0.
Last run (2 CPUs, loaded): 5,000 papers 2.5 s (3.4x tomllib alone); per paper 0.66x that at 1,000.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _benchlib as b

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PROBLEMS = (
    ('commit = "0123abc"', "must be a full 40-character commit hash"),
    ("", "missing required key 'title'"),
    ('yeer = 2020', "unknown key 'yeer'"),
    ('vars = { "BAD NAME" = "x" }', "is not a valid environment variable name"),
    ('sparse = ["../up"]', "'..' is not allowed"),
)


def hostile_registry(papers: int) -> str:
    lines = ["format = 1", ""]
    for index in range(papers):
        extra, _ = PROBLEMS[index % len(PROBLEMS)]
        pid = f"paper-{index}"
        lines += [f"[papers.{pid}]"]
        if extra != "":
            lines.append(f'title = "Paper {index}"')
        lines += ['venue = "arXiv"', "year = 2020", 'section = "Tests"']
        if extra.startswith("yeer"):
            lines.append(extra)
        lines += ["", f"[papers.{pid}.impl.main.code]", f'git = "https://example.org/o/r{index}"']
        lines.append(extra if extra.startswith("commit") else f'commit = "{COMMIT}"')
        if extra.startswith("sparse"):
            lines.append(extra)
        if extra.startswith("vars"):
            lines += [f"[papers.{pid}.impl.main.env]", extra]
        lines += [f"[papers.{pid}.impl.main.smoke]", 'command = "true"', ""]
    return "\n".join(lines) + "\n"


def body(tmp: Path, repeat: int) -> None:
    print(__doc__.strip().splitlines()[0])
    print(f"awrepro {b.check_awrepro_importable()}  (run as: {' '.join(b.awrepro_cmd())})")
    print(b.machine_note())
    env = b.base_environ()
    aw = b.awrepro_cmd()
    cases = {}
    sizes = (1000, 5000)
    for papers in sizes:
        registry = tmp / f"hostile-{papers}.toml"
        registry.write_text(hostile_registry(papers))
        validate = [*aw, "--registry", str(registry), "--cache-dir", str(tmp / "cache"), "validate"]
        done = b.run(validate, env=env, check=False)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        located = [line for line in errors if line.startswith(f"error: {registry}:")]
        if done.returncode != 2 or len(errors) != papers or len(located) != papers:
            raise b.BenchError(f"{papers} papers: exit {done.returncode}, {len(errors)} errors, {len(located)} located "
                               f"(expected exit 2 and {papers} located errors)\n{done.stderr[-2000:]}")
        parse = [sys.executable, "-c", f"import tomllib; tomllib.loads(open({str(registry)!r}).read())"]
        cases[f"validate {papers}"] = (lambda cmd=validate: b.timed_run(cmd, env=env, check=False)[0])
        cases[f"tomllib {papers}"] = (lambda cmd=parse: b.timed(cmd, env=env))
        print(f"{papers} papers: {registry.stat().st_size / 1e6:.1f} MB, {len(errors)} located errors, exit 2")

    samples = b.alternate(cases, repeat, label="validate")
    b.print_table(f"Wall time, {repeat} runs each", b.TIMING_HEADERS, b.timing_rows(samples))
    med = {name: b.median(v) for name, v in samples.items()}
    per_paper = {papers: med[f"validate {papers}"] / papers for papers in sizes}
    b.print_table("Figures", b.RATIO_HEADERS, [
        b.ratio_row("validate 5,000 hostile papers (seconds)", med["validate 5000"], 10.0, unit="s"),
        b.ratio_row("validate 5000 / tomllib 5000", med["validate 5000"] / med["tomllib 5000"], None),
        b.ratio_row("seconds per paper, 5,000 / 1,000", per_paper[5000] / per_paper[1000], 1.5),
    ])


def main() -> int:
    args = b.parser(__doc__, default_repeat=3).parse_args()
    return b.main_wrapper(lambda tmp: body(tmp, args.repeat), args.keep)


if __name__ == "__main__":
    sys.exit(main())
