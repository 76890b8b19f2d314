"""Every bad registry gets its exact one-line message, file and line, exit 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.registry_samples import VALID, hostile_registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "work" / "registry.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def broken(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new)


CASES = [
    # (what is changed, replacement, expected stderr lines)
    ('commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"', 'commit = "caefee6"',
     ["registry.toml:30: papers.longformer.impl.allenai.code.commit: must be a full 40-character commit hash (tags and branches move)"]),
    ('commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"', 'commit = "v1.0"',
     ["registry.toml:30: papers.longformer.impl.allenai.code.commit: must be a full 40-character commit hash (tags and branches move)"]),
    ('commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"', 'commit = "CAEFEE668E39CACDECE7DD603A0BEBF24DF6D8CA"',
     ["registry.toml:30: papers.longformer.impl.allenai.code.commit: must be a full 40-character commit hash (tags and branches move)"]),
    ('official = true', 'official = true\nsubdir = "../escape"',
     ["registry.toml:32: papers.longformer.impl.allenai.code.subdir: subdir must stay inside the checkout: '..' is not allowed"]),
    ('official = true', 'official = true\nsubdir = "/etc"',
     ["registry.toml:32: papers.longformer.impl.allenai.code.subdir: subdir must be a relative path, not '/etc'"]),
    ('[papers.survey]', '[papers.Survey_2]',
     ["registry.toml:9: papers.Survey_2: not a valid id: use lowercase letters and digits, joined by single '-'"]),
    ('impl.port.', 'impl.Port.',
     ["registry.toml:39: papers.longformer.impl.Port: not a valid id: use lowercase letters and digits, joined by single '-'"]),
    ('official = true', 'official = true\nbranch = "main"',
     ["registry.toml:32: papers.longformer.impl.allenai.code.branch: unknown key 'branch' (known keys: git, commit, subdir, sparse, official, listed_as, submodules, archive, sha256, max_unpacked_mib, max_members)"]),
    ('year = 2020\narxiv = "2004.05150"', 'yeer = 2020\narxiv = "2004.05150"',
     ["registry.toml:17: papers.longformer.year: missing required key 'year'",
      "registry.toml:20: papers.longformer.yeer: unknown key 'yeer' (did you mean 'year'?)"]),
    ('requirements = ["torch==2.13.0"]', 'requirement = ["torch==2.13.0"]',
     ["registry.toml:34: papers.longformer.impl.allenai.env.requirement: unknown key 'requirement' (did you mean 'requirements'?)"]),
    ('year = 2020\narxiv = "2004.05150"', 'year = "2020"\narxiv = "2004.05150"',
     ["registry.toml:20: papers.longformer.year: must be an integer, got a string"]),
    ('arxiv = "2004.05150"', 'arxiv = "arXiv:2004.05150"',
     ["registry.toml:21: papers.longformer.arxiv: 'arXiv:2004.05150' is not an arXiv id like 2004.05150"]),
    ('git = "https://github.com/allenai/longformer"', 'git = "ext::sh -c touch% /tmp/pwned"',
     ["registry.toml:29: papers.longformer.impl.allenai.code.git: 'ext::sh -c touch% /tmp/pwned' is not an allowed git URL: use https://, ssh://, git:// or user@host:path"]),
    ('git = "https://github.com/allenai/longformer"', 'git = "http://github.com/allenai/longformer"',
     ["registry.toml:29: papers.longformer.impl.allenai.code.git: 'http://github.com/allenai/longformer' is not an allowed git URL: use https://, ssh://, git:// or user@host:path"]),
    ('git = "https://github.com/allenai/longformer"\n', '',
     ["registry.toml:28: papers.longformer.impl.allenai.code: commit needs git = the repository URL"]),
    ('commit = "0123456789abcdef0123456789abcdef01234567"', 'archive = "https://example.org/x.tar.gz"',
     ["registry.toml:39: papers.longformer.impl.port.code: give either git + commit or archive, not both"]),
    ('command = "python -c \'import longformer\'"', 'command = "true"\nscript = "print(1)"',
     ["registry.toml:36: papers.longformer.impl.allenai.smoke: give command or script, not both"]),
    ('command = "python -c \'import longformer\'"', 'cwd = "src"',
     ["registry.toml:25: papers.longformer.impl.allenai: smoke needs a command, a script or a [static] check"]),
    ('expect = "OK"', 'expect = "OK("',
     ["registry.toml:48: papers.longformer.impl.port.smoke.expect: not a valid regular expression: missing ), unterminated subpattern at position 2"]),
    ('[defaults.smoke]\ntimeout = 60', '[defaults.smoke]\ntimeout = -5',
     ["registry.toml:7: defaults.smoke.timeout: must be greater than 0, got -5"]),
    ('[defaults.env]\npython = "==3.11.*"', '[defaults.env]\npython = 3.11',
     ["registry.toml:4: defaults.env.python: must be a string, got a float"]),
    ('arxiv = "2004.05150"', 'arxiv = "2004.05150"\nlisted_as = "https://github.com/allenai"',
     ["registry.toml:17: papers.longformer: a paper's listed_as is only for papers without implementations; put it in the code table of the implementation it names"]),
    ('format = 1', 'format = 2',
     ["registry.toml:1: format: format 2 is not known to this awrepro (it reads format 1); upgrade awrepro"]),
    ('format = 1\n', '',
     ["registry.toml: format: missing required key 'format'"]),
    ('tags = ["attention"]', 'tags = ["Long Context"]',
     ["registry.toml:23: papers.longformer.tags.0: must be a lowercase slug like 'long-context', not 'Long Context'"]),
    ('[papers.longformer.impl.allenai.env]', '[papers.longformer.impl.allenai.env]\npython = "3.11 or newer"',
     ["registry.toml:34: papers.longformer.impl.allenai.env.python: '3.11 or newer' is not a version constraint like '==3.11.*' or '>=3.9,<3.12'"]),
    ('[papers.longformer.impl.allenai.env]', '[papers.longformer.impl.allenai.env]\ninstall = "develop"',
     ["registry.toml:34: papers.longformer.impl.allenai.env.install: must be 'none', 'editable' or 'normal', not 'develop'"]),
    ('[papers.longformer.impl.allenai.env]', '[papers.longformer.impl.allenai.env]\nbackend = "conda"',
     ["registry.toml:34: papers.longformer.impl.allenai.env.backend: must be 'uv' or 'pip', not 'conda'"]),
    ('[papers.longformer.impl.allenai.env]', '[papers.longformer.impl.allenai.env]\nvars = { "BAD-NAME" = "1" }',
     ["registry.toml:34: papers.longformer.impl.allenai.env.vars.BAD-NAME: 'BAD-NAME' is not a valid environment variable name"]),
    ('[papers.longformer.impl.allenai.env]', '[papers.longformer.impl.allenai.env]\npatches = ["../../etc/passwd"]',
     ["registry.toml:34: papers.longformer.impl.allenai.env.patches.0: a patch path must stay inside the checkout: '..' is not allowed"]),
    ('[papers.longformer.impl.allenai.smoke]', '[papers.longformer.impl.allenai.smoke]\ncwd = "../.."',
     ["registry.toml:37: papers.longformer.impl.allenai.smoke.cwd: cwd must stay inside the checkout: '..' is not allowed"]),
    ('commit = "0123456789abcdef0123456789abcdef01234567"', 'commit = "0123456789abcdef0123456789abcdef01234567"\nsha256 = "abc"',
     ["registry.toml:42: papers.longformer.impl.port.code.sha256: must be 64 lowercase hex digits"]),
    ('[papers.longformer.impl.allenai.smoke]', '[papers.longformer.impl.allenai.smoke.static]\nreason = "legacy"\n\n[papers.longformer.impl.allenai.smoke]',
     ["registry.toml:36: papers.longformer.impl.allenai.smoke.static: give exactly one of command or script"]),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_registry_reports_every_problem(cli, tmp_path: Path, old: str, new: str, expected: list[str]) -> None:
    write(tmp_path, broken(old, new))
    result = cli("validate")
    assert result.code == 2
    assert result.err.splitlines() == [f"error: {line}" for line in expected]
    assert "Traceback" not in result.err
    assert result.out == ""


def test_many_problems_are_reported_at_once(cli, tmp_path: Path) -> None:
    text = broken('commit = "caefee668e39cacdece7dd603a0bebf24df6d8ca"', 'commit = "abc"')
    text = text.replace('arxiv = "2004.05150"', 'arxiv = "x"').replace('year = 2020\narxiv = "2003', 'year = 1800\narxiv = "2003')
    write(tmp_path, text)
    result = cli("validate")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: registry.toml:12: papers.survey.year: must be at least 1900, got 1800",
        "error: registry.toml:21: papers.longformer.arxiv: 'x' is not an arXiv id like 2004.05150",
        "error: registry.toml:30: papers.longformer.impl.allenai.code.commit: must be a full 40-character commit hash (tags and branches move)",
    ]


PYDANTIC_WORDS = ("Input should", "Field required", "Extra inputs", "String should", "instance of", "[type=")
# One message of each kind the schema's types give, in awrepro's words.
PLAIN = ("must be a string, got an integer", "must be an integer, got a string", "must be true or false, got a string",
         "must be an array, got a string", "must be a table, got an integer", "missing required key 'title'",
         "unknown key 'bogus' (known keys: git, commit, subdir, sparse, official, listed_as, submodules, archive, ", "must not be empty", "must be greater than 0, got -5", "must be at least 1900, got -5",
         "must be at most 2100, got 100000000000000000000000000", "must be 'uv' or 'pip', not 'text'",
         "must be a lowercase slug like 'long-context', not 'Bad Key'", "not a valid id: use lowercase letters",
         "must be at most 604800 seconds (7 days), got 100000000000000000000000000")


def test_no_message_is_in_pydantic_words(cli, tmp_path: Path) -> None:
    text, papers = hostile_registry()
    write(tmp_path, text)
    result = cli("validate")
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) > papers / 2, lines[:5]
    assert all(re.match(r"error: registry\.toml:\d+: \S", line) for line in lines)  # each one located
    assert [line for line in lines if any(words in line for words in PYDANTIC_WORDS)] == []
    assert [plain for plain in PLAIN if not any(plain in line for line in lines)] == []


def test_toml_syntax_error_names_line_and_column(cli, tmp_path: Path) -> None:
    write(tmp_path, VALID.replace('venue = "arXiv"\nyear = 2020\narxiv = "2004', 'venue = "arXiv\nyear = 2020\narxiv = "2004'))
    result = cli("validate")
    assert result.code == 2
    assert result.err.splitlines() == ["error: registry.toml:19:15: invalid TOML: Illegal character '\\n'"]


def test_duplicate_key_is_a_toml_error(cli, tmp_path: Path) -> None:
    write(tmp_path, VALID.replace('venue = "arXiv"\nyear = 2020\narxiv = "2004', 'venue = "arXiv"\nvenue = "ICLR"\nyear = 2020\narxiv = "2004'))
    result = cli("validate")
    assert result.code == 2
    assert result.err.splitlines() == ["error: registry.toml:20:15: invalid TOML: Cannot overwrite a value"]


def test_missing_registry_file(cli, tmp_path: Path) -> None:
    result = cli("--registry", str(tmp_path / "nope.toml"), "validate")
    assert result.code == 2
    assert result.err.splitlines() == [f"error: {tmp_path / 'nope.toml'}: no such registry file"]


def test_checks_beyond_the_schema(cli, tmp_path: Path) -> None:
    text = VALID.replace('arxiv = "2004.05150"', 'arxiv = "2003.08271"')
    text = text.replace('git = "https://github.com/someone/longformer-port"', 'git = "https://github.com/allenai/longformer.git"')
    text = text.replace('requirements = ["torch==2.13.0"]', 'requirements = ["torch==2.13.0", "numpy<<1"]\nsteps = []\npatches = ["patches/longformer/fix.patch"]')
    write(tmp_path, text)
    result = cli("validate")
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: registry.toml:21: papers.longformer.arxiv: arXiv id 2003.08271 is also used by papers.survey",
        "error: registry.toml:36: papers.longformer.impl.allenai.env.patches.0: patch file patches/longformer/fix.patch does not exist (paths start at the registry's folder)",
        "error: registry.toml:34: papers.longformer.impl.allenai.env.requirements.1: 'numpy<<1' is not a valid requirement like 'numpy<1.24' (PEP 508)",
        "error: registry.toml:41: papers.longformer.impl.port.code: same repository and subdir as longformer/allenai; give it another subdir or merge the entries",
    ]


def test_unpinned_archive_is_a_warning(cli, tmp_path: Path) -> None:
    text = VALID.replace('git = "https://github.com/someone/longformer-port"\ncommit = "0123456789abcdef0123456789abcdef01234567"',
                         'archive = "https://example.org/u-net-release.tar.gz"')
    write(tmp_path, text)
    result = cli("validate")
    assert result.code == 0
    assert result.err.splitlines() == [
        "warning: registry.toml:40: papers.longformer.impl.port.code.archive: unpinned archive: no sha256, so `check` skips it; add sha256 once the file is known"
    ]
    assert result.out == "registry.toml: valid (2 papers, 2 implementations, 1 warning)\n"


def test_valid_registry(cli, tmp_path: Path) -> None:
    write(tmp_path, VALID)
    result = cli("validate")
    assert (result.code, result.err) == (0, "")
    assert result.out == "registry.toml: valid (2 papers, 2 implementations)\n"


def test_registry_is_found_in_a_parent_folder(cli, tmp_path: Path) -> None:
    write(tmp_path, VALID)
    deeper = tmp_path / "work" / "a" / "b"
    deeper.mkdir(parents=True)
    result = cli("validate", cwd=deeper)
    assert result.code == 0
    assert result.out == f"{tmp_path / 'work' / 'registry.toml'}: valid (2 papers, 2 implementations)\n"


def test_environment_variable_names_the_registry(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(VALID.replace("format = 1", "format = 9"))
    monkeypatch.setenv("AWREPRO_REGISTRY", str(elsewhere))
    write(tmp_path, VALID)
    result = cli("validate")
    assert result.code == 2
    assert "format 9 is not known" in result.err
