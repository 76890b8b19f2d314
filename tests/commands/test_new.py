"""`awrepro new` end to end: real repositories on a real git daemon, a real package index on
127.0.0.1 with upload times, real uv environments, real smoke runs; then `check` on what it wrote.

The wheels are tiny ones the tests write: ``torch`` 2.13.0 in a local wheel folder (a stand-in
with just enough of torch's API for a forward pass), and on the index numpy 1.23 (2022, with
``np.float``) and 2.0 (2024, without), ``yacs``, and a torch 1.4.0 that must never be installed.
"""

from __future__ import annotations

import ensurepip
import os
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.envs.conftest import write_wheel
from tests.gitfixtures import GitDaemon, RepoFactory
from tests.pyindex import PackageIndex

pytestmark = pytest.mark.slow

FAKE_TORCH = '''
class _Tensor:
    def __init__(self, shape, dtype="float"):
        self.shape, self.dtype = tuple(shape), dtype
    def byte(self):
        return _Tensor(self.shape, "uint8")
    def bool(self):
        return _Tensor(self.shape, "bool")
    def masked_fill(self, mask, value):
        if mask.dtype != "bool":
            raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype unsigned char")
        return self
def ones(*shape):
    return _Tensor(shape)
def randn(*shape):
    return _Tensor(shape)
def randint(low, high, shape):
    return _Tensor(shape)
class no_grad:
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
def device(kind):
    if str(kind).startswith("cuda"):
        raise RuntimeError("Found no NVIDIA driver on your system")
    return kind
class version:
    cuda = None
class nn:
    class Module:
        def __call__(self, *args):
            return self.forward(*args)
        def eval(self):
            return self
        def parameters(self):
            return iter(())
'''

# The model module imports a helper that uses collections.Iterable (gone in 3.10), uses np.float
# (gone in numpy 1.24) and imports yacs, which nothing declares; its forward pass masks with a
# uint8 mask (bool since torch 1.2). setup.py must never run.
NUMPY_REPO = {
    "setup.py": ("raise SystemExit('setup.py was executed')\nimport torch\nfrom setuptools import setup\n"
                 "deps = ['numpy', 'torch==1.4.0']\nsetup(name='oldnet', install_requires=deps)\n"),
    "oldnet/__init__.py": "",
    "oldnet/util.py": "from collections import Iterable\n\ndef flat(x):\n    return isinstance(x, Iterable)\n",
    "oldnet/model.py": ("import numpy as np\nimport torch\nimport yacs\nfrom oldnet.util import flat\n\n"
                        "EPS = np.float(1e-3)\n\n\nclass OldNet(torch.nn.Module):\n"
                        "    def __init__(self, width=4):\n        self.width = width\n\n"
                        "    def forward(self, x):\n        mask = torch.ones(*x.shape).byte()\n"
                        "        return x.masked_fill(mask, 0.0)\n"),
    "train.py": "import wandb\nfrom oldnet.model import OldNet\n",
}

CUDA_REPO = {
    "gpunet.py": ("import torch\n\nDEVICE = torch.device('cuda')\n\n\nclass GpuNet(torch.nn.Module):\n"
                  "    def forward(self, x):\n        return x\n"),
}

NATIVE_REPO = {
    "setup.py": ("from setuptools import Extension, setup\n"
                 "setup(name='fastnet', ext_modules=[Extension('fastops', ['fastops.c'])])\n"),
    "fastops.c": ('#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "fastops", NULL, -1, NULL};\n'
                  "PyMODINIT_FUNC PyInit_fastops(void) { return PyModule_Create(&m); }\n"),
    "fastnet.py": ("import torch\nimport fastops\n\n\nclass FastNet(torch.nn.Module):\n"
                   "    def __init__(self, size):\n        self.size = size\n\n    def forward(self, x):\n        return x\n"),
}

# The code's folder is impl/; its config comes from a sibling folder of the repository, where a
# dataclass has a dataclass instance as a field default (refused since Python 3.11); once that is
# patched, the forward pass masks with uint8 (a second patch, read from the patched checkout).
# Test data beside the code is never fetched.
SIBLING_REPO = {
    "common/__init__.py": "",
    "common/config.py": ("from dataclasses import dataclass\n\n\n@dataclass\nclass Inner:\n    size: int = 4\n\n\n"
                         "@dataclass\nclass Config:\n    inner: Inner = Inner()\n"),
    "common/testdata/sample.bin": "fixture bytes\n",
    "impl/net.py": ("import torch\nfrom common.config import Config\n\n\nclass Net(torch.nn.Module):\n"
                    "    def forward(self, x):\n        return x.masked_fill(torch.ones(*x.shape).byte(), 0.0)\n"),
    "impl/test_data/weights.txt": "1 2 3\n",
}

# setup.py hands setuptools a function as its build_ext command (old setuptools took it): today's
# `setup.py build_ext` refuses it on the command line, `setup.py develop` builds it.
OLD_SETUP_REPO = {
    "setup.py": ("from setuptools import Extension, setup\n\n\ndef build_ext(dist):\n"
                 "    from setuptools.command.build_ext import build_ext as base\n    return base(dist)\n\n\n"
                 "setup(name='oldext', ext_modules=[Extension('oldops', ['oldops.c'])], cmdclass={'build_ext': build_ext})\n"),
    "oldops.c": NATIVE_REPO["fastops.c"].replace("fastops", "oldops"),
    "oldnet.py": NATIVE_REPO["fastnet.py"].replace("fastops", "oldops").replace("FastNet", "OldNet"),
}

NET = "import torch\n\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x\n"


def _requires(major: int) -> str:
    """A model module that checks yacs>=MAJOR at import, the way libraries check their requirements."""
    return ("import importlib.metadata\n\ntry:\n    found = int(importlib.metadata.version('yacs').split('.')[0])\n"
            "except importlib.metadata.PackageNotFoundError:\n    found = None\n"
            f"if found is None or found < {major}:\n    raise importlib.metadata.PackageNotFoundError(\n"
            f"        \"The 'yacs>={major}' distribution was not found and is required by this application\")\n"
            "import torch\n\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x\n")


@dataclass
class Setting:
    repos: RepoFactory
    daemon: GitDaemon
    index: PackageIndex
    tmp: Path

    def args(self, registry: Path) -> list[str]:
        return ["--cache-dir", str(self.tmp / "cache"), "--registry", str(registry)]


@pytest.fixture
def setting(tmp_path: Path, repos: RepoFactory, git_daemon: GitDaemon, monkeypatch: pytest.MonkeyPatch,
            uv_cache: Path) -> Iterator[Setting]:
    from awrepro.envs.base import user_pip_settings

    wheels = tmp_path / "wheels"
    write_wheel(wheels, "torch", "2.13.0", FAKE_TORCH)
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    for wheel in bundled.glob("setuptools-*.whl"):  # for the native build: offline, from the interpreter itself
        shutil.copy(wheel, wheels)
    index = PackageIndex(tmp_path / "index")
    index.add("numpy", "1.23.0", "2022-06-22T00:00:00Z", "float = float\n")
    index.add("numpy", "2.0.0", "2024-06-16T00:00:00Z", "")
    index.add("yacs", "0.1.8", "2020-08-01T00:00:00Z", "")
    index.add("torch", "1.4.0", "2020-01-15T00:00:00Z", "raise ImportError('the index torch was installed')\n")
    index.start()
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    user_pip_settings.cache_clear()
    try:
        yield Setting(repos, git_daemon, index, tmp_path)
    finally:
        user_pip_settings.cache_clear()
        index.stop()


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache-new")


def _impl(registry: Path, paper: str, name: str = "main") -> dict:
    return tomllib.loads(registry.read_text())["papers"][paper]["impl"][name]


def test_new_repairs_its_way_to_a_forward_pass_and_check_passes_it(setting: Setting, cli,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2025-01-01T00:00:00+00:00")  # numpy 2.0 is the release of its time
    setting.repos.create("oldnet", NUMPY_REPO)
    into = setting.tmp / "out" / "r.toml"
    into.parent.mkdir()
    into.write_text('format = 1\n\n# kept as it is\n[papers.other]\ntitle = "Other"\nvenue = "X"\nyear = 2020\n'
                    'section = "S"\nno_code = "none"\n')
    before = into.read_text()

    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("oldnet"), "--into", str(into))
    assert done.code == 0, done.out + done.err
    assert "oldnet  reached smoke" in done.out
    assert into.read_text().startswith(before)  # nothing else in the file changed
    impl = _impl(into, "oldnet")
    assert impl["env"]["requirements"] == ["torch==2.13.0", "numpy<1.24", "yacs"]
    assert impl["env"]["exclude_newer"] == "commit"
    notes = "\n".join(impl["notes"])
    assert "yacs added: oldnet/model.py imports yacs, which nothing declares" in notes
    assert "numpy<1.24: the code uses np.float" in notes
    assert "collections.Iterable" in notes
    assert "wandb" not in notes  # train.py is a script, not the model's code
    assert "uint8 masks (torch < 1.2) in oldnet/model.py made bool: patch uint8-masks-oldnet-model-py.patch" in notes
    patch = into.parent / "patches" / "oldnet" / "uint8-masks-oldnet-model-py.patch"
    assert "+        mask = torch.ones(*x.shape).bool()" in patch.read_text()
    assert impl["env"]["patches"] == ["patches/oldnet/uint8-masks-oldnet-model-py.patch"]
    assert notes.endswith("reached level smoke")
    assert impl["smoke"]["level"] == "smoke"
    assert "OldNet().eval()" in impl["smoke"]["script"]
    assert not any("torch-1.4.0" in path for path in setting.index.requested)  # never another torch

    check = cli(*setting.args(into), "check", "--all")
    assert check.code == 0, check.out + check.err
    assert "oldnet  passed (smoke)" in check.out
    shown = cli(*setting.args(into), "show", "oldnet")
    assert "\n  as of      commit\n" in shown.out, shown.out


def test_cuda_only_code_gets_a_gpu_smoke_test_and_a_static_check(setting: Setting, cli) -> None:
    setting.repos.create("gpunet", CUDA_REPO)
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("gpunet"), "--into", str(into),
               "--id", "gpu-net")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "gpu-net")
    assert impl["smoke"]["gpu"] is True
    assert impl["smoke"]["static"]["command"] == 'python -X pycache_prefix="$TMPDIR/pycache" -m compileall -q .'
    assert "CUDA-only code runs at import (gpunet.py:3)" in impl["notes"][0]
    assert impl["notes"][-1].endswith("reached level static")
    check = cli(*setting.args(into), "check", "--all")
    assert "gpu-net  passed (static)" in check.out, check.out + check.err


def test_a_native_extension_gets_a_build_step_and_an_import_test(setting: Setting, cli) -> None:
    setting.repos.create("fastnet", NATIVE_REPO)
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("fastnet"), "--into", str(into),
               "--max-tries", "2")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "fastnet")
    assert impl["env"]["steps"] == ["python setup.py build_ext --inplace"]
    assert "setuptools" in impl["env"]["requirements"]
    assert impl["smoke"]["level"] == "import"  # FastNet needs an argument: no forward pass is guessed
    assert "from fastnet import FastNet" in impl["smoke"]["script"]


def test_bad_input_is_one_line_and_writes_nothing(setting: Setting, cli) -> None:
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", "ftp://example.org/x", "--into", str(into))
    assert done.code == 2
    assert done.err.count("\n") == 1 and "not an allowed git URL" in done.err
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("nothing-here"), "--into", str(into))
    assert done.code == 1 and "nothing-here.git" in done.err and done.err.count("\n") == 1
    assert not into.exists()
    into.write_text("format = 1\n[papers.x]\ntitle = 1\n")
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("nothing-here"), "--into", str(into))
    assert done.code == 2 and "papers.x.title" in done.err
    assert into.read_text() == "format = 1\n[papers.x]\ntitle = 1\n"


def test_a_subdir_gets_a_dataclass_patch_in_a_sibling_folder(setting: Setting, cli) -> None:
    setting.repos.create("monorepo", SIBLING_REPO)
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("monorepo"), "--into", str(into),
               "--subdir", "impl", "--max-tries", "4")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "monorepo")
    name = "py311-dataclass-defaults-common-config-py.patch"
    assert f"mutable dataclass defaults (refused since Python 3.11) in common/config.py: default_factory: patch {name}" \
        in impl["notes"]
    patch = (into.parent / "patches" / "monorepo" / name).read_text()
    assert patch.startswith("--- a/common/config.py\n+++ b/common/config.py\n")  # from the repository's root
    assert "+    inner: Inner = dataclasses.field(default_factory=Inner)" in patch
    assert impl["env"]["patches"] == [f"patches/monorepo/{name}", "patches/monorepo/uint8-masks-impl-net-py.patch"]
    assert impl["code"]["sparse"] == ["impl", "common", "!common/testdata", "!impl/test_data"]
    assert ("the sparse checkout leaves out test data, which the model code does not import: common/testdata, "
            "impl/test_data") in impl["notes"]
    assert impl["notes"][-1].endswith("reached level smoke")
    check = cli(*setting.args(into), "check", "--all")
    assert "monorepo  passed (smoke)" in check.out, check.out + check.err


def test_a_distribution_the_code_requires_is_added_and_a_stop_names_the_error(setting: Setting, cli) -> None:
    setting.repos.create("needsyacs", {"needsyacs.py": _requires(0)})
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("needsyacs"), "--into", str(into),
               "--max-tries", "3")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "needsyacs")
    assert impl["env"]["requirements"] == ["torch==2.13.0", "yacs"]
    assert "yacs added: the code requires the distribution yacs at run time, which nothing declares" in impl["notes"]

    # Declared already (and installed), yet the check fails: no rule applies, and the stop says why.
    setting.repos.create("wantsnewer", {"requirements.txt": "yacs\n", "wantsnewer.py": _requires(9)})
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("wantsnewer"), "--into", str(into),
               "--max-tries", "3")
    assert done.code == 1, done.out + done.err
    assert ("stopped after 1 tries: smoke: importlib.metadata.PackageNotFoundError: No package metadata was found for "
            "The 'yacs>=9' distribution was not found and is required by this application;") in done.out, done.out


def test_a_package_installed_without_its_dependencies_counts_as_declared(setting: Setting, cli) -> None:
    # parentpkg 2.0 needs badbuild, whose only release does not build; the code imports
    # parentpkg.gone, which only 1.x has.
    setting.index.add_sdist("badbuild", "1.0", "2019-01-01T00:00:00Z", "raise SystemExit('badbuild needs a compiler')\n")
    setting.index.add("parentpkg", "1.0", "2019-06-01T00:00:00Z", "", submodules={"gone": "X = 1\n"})
    setting.index.add("parentpkg", "2.0", "2020-06-01T00:00:00Z", "", requires=("badbuild", "yacs"))
    setting.repos.create("usesold", {"requirements.txt": "parentpkg\n", "usesold.py": "import parentpkg.gone\n" + NET})
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("usesold"), "--into", str(into),
               "--max-tries", "4")
    assert done.code == 0, done.out + done.err
    # 1: badbuild fails (no try moves it to a release it does not have), 2: parentpkg.gone is
    # missing, 3: passes
    assert "usesold  reached smoke in 3 tries" in done.out, done.out
    impl = _impl(into, "usesold")
    assert impl["env"]["no_deps"] == ["parentpkg<2"]
    assert impl["env"]["requirements"] == ["torch==2.13.0", "yacs"]  # parentpkg never added back
    assert ("badbuild==1.0 (needed by parentpkg==2.0) does not build on this Python: parentpkg==2.0 installed "
            "without its dependencies; its requirements listed by name instead: yacs") in impl["notes"]
    assert "parentpkg<2: parentpkg.gone is gone in parentpkg 2.0" in impl["notes"]


def test_a_dependency_too_old_for_this_python_moves_forward(setting: Setting, cli) -> None:
    old = "from dataclasses import dataclass\n\n\n@dataclass\nclass A:\n    x: int = 1\n\n\n@dataclass\nclass B:\n    a: A = A()\n"
    setting.index.add("oldcfg", "1.0", "2020-01-01T00:00:00Z", old)
    setting.index.add("oldcfg", "2.0", "2023-01-10T00:00:00Z", "")
    setting.index.add("oldcfg", "2.1", "2024-01-10T00:00:00Z", "")
    setting.repos.create("cfgnet", {"requirements.txt": "oldcfg<2\n", "cfgnet.py": "import oldcfg\n" + NET})
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("cfgnet"), "--into", str(into),
               "--max-tries", "3")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "cfgnet")
    assert impl["env"]["requirements"] == ["torch==2.13.0", "oldcfg>=2.0"]
    assert any(n.startswith("oldcfg>=2.0: oldcfg's own code fails on Python 3.11 (ValueError: mutable default")
               and n.endswith("its first release after Python 3.11 came out") for n in impl["notes"]), impl["notes"]


def test_a_build_ext_that_setuptools_refuses_is_built_by_develop(setting: Setting, cli) -> None:
    bundled = next((Path(ensurepip.__file__).parent / "_bundled").glob("setuptools-*.whl"))
    version = bundled.name.split("-")[1]
    setting.index.add_file("setuptools", bundled, "2022-11-01T00:00:00Z")  # its release as of the commit's date
    setting.repos.create("oldext", OLD_SETUP_REPO)
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("oldext"), "--into", str(into),
               "--max-tries", "3")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "oldext")
    assert impl["env"]["steps"] == ["python setup.py develop --no-deps"]
    assert impl["env"]["no_deps"] == [f"setuptools=={version}"]
    assert impl["notes"][1].startswith("`python setup.py build_ext --inplace` fails inside setuptools (TypeError: "
                                       "issubclass() arg 1 must be a class)")
    assert "from oldnet import OldNet" in impl["smoke"]["script"]


def test_a_cuda_extension_is_not_built_against_a_cpu_torch(setting: Setting, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = setting.tmp / "wheels"
    for wheel in wheels.glob("torch-*.whl"):
        wheel.unlink()
    write_wheel(wheels, "torch", "2.13.0+cpu", FAKE_TORCH)
    tools = setting.tmp / "tools"
    tools.mkdir()
    (tools / "nvcc").write_text("#!/bin/sh\nexit 1\n")
    (tools / "nvcc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    setting.repos.create("cudaext", {
        "kernels/setup.py": "from torch.utils.cpp_extension import CUDAExtension\n",
        "kernels/k.cu": "", "cudanet.py": NET})
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("cudaext"), "--into", str(into),
               "--max-tries", "1")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "cudaext")
    assert "steps" not in impl["env"]
    assert "CUDA extension in kernels: not built (the local torch wheel is a CPU build)" in impl["notes"]


def test_a_distribution_added_later_moves_forward_to_its_first_wheel(setting: Setting, cli,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # fastlib 1.0 (the release of the commit's date) has a wheel for an old Python only; 2.0 has one for this one.
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2020-06-01T00:00:00+00:00")
    for version, uploaded, tag in (("1.0", "2019-01-01T00:00:00Z", "cp36-cp36m-manylinux1_x86_64"),
                                   ("2.0", "2023-03-01T00:00:00Z", "cp311-cp311-manylinux_2_17_x86_64")):
        wheel = write_wheel(setting.tmp / "built", "fastlib", version, "")
        setting.index.add_file("fastlib", wheel.rename(wheel.with_name(f"fastlib-{version}-{tag}.whl")), uploaded)
    setting.repos.create("latenet", {"latenet.py": _requires(0).replace("yacs", "fastlib")})
    into = setting.tmp / "r.toml"
    done = cli("--cache-dir", str(setting.tmp / "cache"), "new", setting.daemon.url("latenet"), "--into", str(into),
               "--max-tries", "2")
    assert done.code == 0, done.out + done.err
    impl = _impl(into, "latenet")
    assert "fastlib=2023-03-01" in impl["env"]["exclude_newer_exempt"]
    assert ("fastlib added: the code requires the distribution fastlib at run time, which nothing declares; moved "
            "forward to 2.0 (2023-03-01), its first release with a wheel for this Python") in impl["notes"]
