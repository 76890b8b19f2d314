"""Building cache entries aside and renaming them into place (shared by checkouts and archives).

An entry is built in a temporary folder ``.tmp-KEY-RANDOM`` beside its final place, its
marker written last, and renamed into place under the entry's lock, so a run killed at any
moment leaves nothing that a later run trusts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from awrepro.errors import FetchError
from awrepro.model import Code

MARKER = "awrepro.json"  # written last into a finished entry: without it nothing there is trusted


@contextmanager
def aside(folder: Path, key: str) -> Iterator[Path]:
    """A fresh temporary folder for ``key`` in ``folder`` (leftovers of killed runs removed
    first: call it under ``key``'s lock); removed again unless the body renamed it into place."""
    import tempfile  # only when building: a warm fetch reads the marker, nothing more

    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder, key)
    temporary = Path(tempfile.mkdtemp(dir=folder, prefix=f".tmp-{key}-"))
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def apply_patches(work: Path, patches: list[tuple[str, bytes]], code: Code, log_path: Path | None,
                  *, stage: bool) -> None:
    """Apply the entry's patches in order; ``stage`` also records them in the index (see ``fetching._trusted``)."""
    from awrepro import git, process  # only when building
    from awrepro.paths import inside

    for index, (name, text) in enumerate(patches):
        patch_file = work.parent / f".{Path(name).name}"
        patch_file.write_bytes(text)
        try:
            for target in patch_targets(work, patch_file):  # before git apply writes anything
                inside(work, work, target, f"env.patches.{index} ({name}) target")
            done = git.run(["apply", *(["--index"] if stage else []), str(patch_file)], cwd=work, log_path=log_path)
        finally:
            patch_file.unlink()
        if not done.ok:
            raise FetchError(f"patch {name} does not apply to {code.url}@{(code.pin or '')[:12]}: "
                             f"{patch_problem(done.output) or process.last_error_line(done.output)}")


def patch_targets(work: Path, patch_file: Path) -> list[str]:
    """Every path the patch writes or removes, as git reads it (``-R`` lists the sources of renames
    and copies); none when git cannot read the patch: applying it then says why."""
    from awrepro import git

    found: list[str] = []
    for reverse in ([], ["-R"]):
        done = git.run(["apply", "--numstat", "-z", *reverse, str(patch_file)], cwd=work, whole_output=True)
        if not done.ok:
            continue
        for record in done.output.split("\0"):  # ADDED TAB DELETED TAB PATH, "-" for binary counts
            added, _, rest = record.partition("\t")
            deleted, _, path = rest.partition("\t")
            if path and all(count == "-" or count.isdigit() for count in (added, deleted)):
                found.append(path)
    return list(dict.fromkeys(found))


def patch_problem(output: str) -> str:
    """What ``git apply`` says went wrong, as a file and line the author can open."""
    import re

    hunk = re.search(r"patch failed: (.+):(\d+)$", output, re.M)
    if hunk:
        return (f"the hunk at {hunk.group(1)}:{hunk.group(2)} does not match the file there "
                "(make the patch against this commit: git diff in a checkout of it)")
    missing = re.search(r"error: (.+): (?:No such file or directory|does not exist in index)$", output, re.M)
    if missing:
        return (f"{missing.group(1)} is not in the checkout (paths in a patch start at the repository's root, "
                "even for an entry with a subdir)")
    corrupt = re.search(r"corrupt patch at line (\d+)", output)
    if corrupt:
        return f"the patch file is corrupt at its line {corrupt.group(1)} (git-apply format: a git diff)"
    return ""


def replace_dir(temporary: Path, final: Path) -> None:
    """Rename ``temporary`` to ``final``, moving a damaged ``final`` out of the way first."""
    if final.exists():
        trash = final.with_name(f".trash-{final.name}-{os.getpid()}")
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.rename(temporary, final)


def remove_leftovers(folder: Path, key: str) -> None:
    """Temporary folders of ``key`` left by killed runs; safe because we hold ``key``'s lock.

    Only ``.tmp-KEY-RANDOM``: ``.tmp-KEY-DIGEST-RANDOM`` belongs to another key (the same
    commit with patches), whose lock we do not hold and which may be being built right now.
    """
    prefix = f".tmp-{key}-"
    for leftover in folder.glob(f"{prefix}*"):
        if "-" not in leftover.name[len(prefix):]:  # mkdtemp's random part has no '-'
            shutil.rmtree(leftover, ignore_errors=True)
