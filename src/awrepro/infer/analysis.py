"""What a checkout needs, read without running any of its code (``ast``, text files).

Declarations (requirements files, setup.py parsed with ``ast``, setup.cfg, pyproject.toml,
environment.yml, ``pip install`` lines of the README), the model modules (``torch.nn.Module``,
flax/haiku ``Module``, Keras ``Layer``/``Model`` subclasses) and the local modules they import,
the third-party modules those import, native extensions, and code that can only run with CUDA.
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from awrepro.infer.names import CONDA_TO_PYPI

SKIP_DIRS = {".git", ".github", "docs", "doc", "build", "dist", "node_modules", "venv", ".venv", "env", "site-packages",
             "__pycache__", "third_party", "thirdparty", "external"}
SCRIPT_NAMES = re.compile(r"^(setup|conftest|train.*|main|run.*|eval.*|test.*|demo.*|inference.*|predict.*|"
                          r"preprocess.*|prepro.*|download.*|convert.*|generate.*|interactive.*|score.*|__main__|.*_tests?)\.py$")
TEST_PARTS = {"test", "tests", "testing", "scripts", "script", "tools", "examples", "example", "notebooks"}
MODEL_BASES = {"Module", "Layer", "Model"}  # nn.Module, hk.Module, flax nn.Module, keras Layer / Model
MAX_FILES = 3000
FRAMEWORKS = {"torch", "tensorflow", "jax", "flax", "haiku", "keras", "trax", "mxnet", "chainer"}


@dataclass(frozen=True)
class Declared:
    requirement: str  # a PEP 508 string, or a URL line kept as it is
    source: str  # the file it came from


@dataclass
class ModelClass:
    name: str
    required_args: int  # __init__ parameters without a default (self excluded); -1: unknown
    line: int


@dataclass
class Module:
    name: str  # dotted, importable from its root
    path: str  # relative to the checkout root
    root: str  # the folder it is importable from ("" = the checkout root)
    classes: list[ModelClass] = field(default_factory=list)
    third_party: dict[str, int] = field(default_factory=dict)  # top-level module -> line (module-level imports)
    local: set[str] = field(default_factory=set)  # local modules it imports
    targets: set[str] = field(default_factory=set)  # every dotted name it imports at module level
    safe: bool = True  # nothing but imports, definitions and assignments at its top level
    cuda_at_import: list[int] = field(default_factory=list)
    cuda_at_build: list[int] = field(default_factory=list)
    python2: bool = False


@dataclass
class Analysis:
    root: Path  # the repository
    focus: str = ""  # the implementation's folder in it (``--subdir``), "" for all of it
    declared: list[Declared] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)
    native: list[str] = field(default_factory=list)  # setup.py folders (relative) with C/C++/Cython extensions
    cuda_extensions: list[str] = field(default_factory=list)
    pyx: list[str] = field(default_factory=list)
    extension_modules: set[str] = field(default_factory=set)  # what native extensions are imported as
    extensions_by_folder: dict[str, set[str]] = field(default_factory=dict)
    setup_imports_torch: bool = False
    readme_title: str | None = None

    def model_modules(self, limit: int = 3) -> list[Module]:
        """The modules that define model classes, the most telling first."""
        inside = f"{self.focus}/" if self.focus else ""
        candidates = [m for m in self.modules.values() if m.classes and not m.python2 and _is_library(m.path[len(inside):])
                      and m.path.startswith(inside)]
        candidates.sort(key=lambda m: (not m.safe, bool(m.cuda_at_import), -len(m.classes), m.path.count("/"), m.path))
        return candidates[:limit]

    def framework_modules(self, limit: int = 3) -> list[Module]:
        """Without model classes (functional TF1-era code): the library modules that use a framework."""
        inside = f"{self.focus}/" if self.focus else ""
        library = [m for m in self.modules.values() if not m.python2 and m.safe and m.path.startswith(inside)
                   and _is_library(m.path[len(inside):])]
        candidates = [m for m in library if set(m.third_party) & FRAMEWORKS]
        if not candidates:  # a framework of the repository's own (its layers, on top of one) does the importing
            candidates = [m for m in library if any(set(d.third_party) & FRAMEWORKS for d in self.closure([m]))]
        candidates.sort(key=lambda m: (m.path.count("/"), -len(m.third_party), m.path))
        return candidates[:limit]

    def closure(self, modules: list[Module]) -> list[Module]:
        """``modules`` and the local modules they import, transitively."""
        seen: dict[str, Module] = {}
        todo = [m.name for m in modules]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.modules:
                continue
            seen[name] = self.modules[name]
            todo.extend(self.modules[name].local)
        return list(seen.values())

    def needed_extensions(self, modules: list[Module]) -> list[str]:
        """Folders whose native extensions the model code imports (or whose names are unknown)."""
        targets = {t for m in self.closure(modules) for t in m.targets}
        tails = {t.split(".")[-1] for t in targets}
        return [folder for folder in self.native
                if not self.extensions_by_folder.get(folder)
                or any(e in targets or e.split(".")[-1] in tails for e in self.extensions_by_folder[folder])]

    def local_top_names(self) -> set[str]:
        # An import root's own folder name is no module (`tensorflow/` holding flat modules is not tensorflow).
        return {name.split(".")[0] for name in self.modules} | {name.split(".")[0] for name in self.extension_modules}


def _is_library(path: str) -> bool:
    parts = path.split("/")
    return not SCRIPT_NAMES.match(parts[-1]) and not any(p.lower() in TEST_PARTS for p in parts[:-1])


def analyse(root: Path, focus: str = "") -> Analysis:
    """Read the repository at ``root``; ``focus`` is the implementation's folder in it, whose own
    declarations come first (the repository's top-level ones are read too: a monorepo's)."""
    result = Analysis(root, focus)
    files = _python_files(root)
    _index_modules(root, files, result)
    if focus:
        _read_declarations(root / focus, result)
    _read_declarations(root, result)
    _read_native(root, files, result)
    result.readme_title = _readme_title(root)
    return result


def _python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel[:-1]) or not path.is_file():
            continue
        found.append(path)
        if len(found) >= MAX_FILES:
            break
    return found


def import_root(root: Path, path: Path) -> Path:
    """The folder ``path`` is importable from: the first parent up without an ``__init__.py``."""
    folder = path.parent
    while folder != root and (folder / "__init__.py").is_file():
        folder = folder.parent
    return folder


def _index_modules(root: Path, files: list[Path], result: Analysis) -> None:
    parsed: dict[str, tuple[ast.Module, Module]] = {}
    for path in files:
        base = import_root(root, path)
        rel = path.relative_to(base).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        if not parts or not all(p.isidentifier() for p in parts):
            continue
        name = ".".join(parts)
        root_rel = "" if base == root else base.relative_to(root).as_posix()
        module = Module(name, path.relative_to(root).as_posix(), root_rel)
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            module.python2 = True
            result.modules.setdefault(name, module)
            continue
        if name in result.modules and not result.modules[name].python2:
            continue  # the same dotted name in two roots: the first (shallowest path) wins
        result.modules[name] = module
        parsed[name] = (tree, module)
    local_tops = {n.split(".")[0] for n in result.modules}
    for name, (tree, module) in parsed.items():
        _read_module(tree, module, result, local_tops)
    _mark_model_classes(parsed)


def _read_module(tree: ast.Module, module: Module, result: Analysis, local_tops: set[str]) -> None:
    package = module.name if module.path.endswith("__init__.py") else module.name.rpartition(".")[0]
    stdlib = sys.stdlib_module_names
    for node, optional in _module_level_imports(tree):
        for target in _import_targets(node, package):
            module.targets.add(target)
            top = target.split(".")[0]
            if top in local_tops:
                module.local.update(_local_candidates(target, result))
            elif top not in stdlib and top != "__future__" and not optional and target:
                module.third_party.setdefault(top, node.lineno)
    module.safe = all(_harmless(statement) for statement in tree.body)
    for statement in tree.body:
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _uses_cuda(statement):
            module.cuda_at_import.append(statement.lineno)
        if isinstance(statement, ast.ClassDef):
            for item in statement.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__" and _uses_cuda(item):
                    module.cuda_at_build.append(item.lineno)


def _local_candidates(target: str, result: Analysis) -> set[str]:
    parts = target.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in result.modules}


def _module_level_imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Imports run at import time (also inside top-level if/try); ``True`` when a try guards them."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def walk(statements: list[ast.stmt], optional: bool) -> None:
        for statement in statements:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                found.append((statement, optional))
            elif isinstance(statement, ast.If):
                walk(statement.body, optional)
                walk(statement.orelse, True)
            elif isinstance(statement, ast.Try):
                walk(statement.body, True)
                for handler in statement.handlers:
                    walk(handler.body, True)
                walk(statement.orelse, optional)
                walk(statement.finalbody, optional)

    walk(tree.body, False)
    return found


def _import_targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package.split(".") if package else []
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join([*base, *([node.module] if node.module else [])])
        return [f"{prefix}.{alias.name}" if prefix else alias.name for alias in node.names] + ([prefix] if prefix else [])
    assert node.module is not None
    return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]


def _harmless(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                              ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass)):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True  # a docstring
    if isinstance(statement, ast.If):
        test = ast.unparse(statement.test)
        return "__main__" in test or all(_harmless(s) for s in statement.body + statement.orelse)
    if isinstance(statement, ast.Try):
        return all(_harmless(s) for s in statement.body)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        called = ast.unparse(statement.value.func)
        return called.endswith(("warnings.filterwarnings", "register", "setLevel", "basicConfig", "simplefilter"))
    return False


_CUDA_CALL = re.compile(r"\.cuda\(|torch\.device\(\s*['\"]cuda|device\s*=\s*['\"]cuda|\.to\(\s*['\"]cuda|"
                        r"torch\.cuda\.(FloatTensor|LongTensor|ByteTensor|set_device)")


def _uses_cuda(node: ast.AST) -> bool:
    text = ast.unparse(node)
    if not _CUDA_CALL.search(text):
        return False
    return "is_available" not in text  # guarded: it runs on CPU too


def _mark_model_classes(parsed: dict[str, tuple[ast.Module, Module]]) -> None:
    """Subclasses of a framework's Module/Layer/Model, and of the repository's own model classes."""
    known: set[str] = set()
    changed = True
    while changed:
        changed = False
        for tree, module in parsed.values():
            for node in tree.body:
                if not isinstance(node, ast.ClassDef) or any(c.name == node.name for c in module.classes):
                    continue
                bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
                direct = bases & MODEL_BASES and any(ast.unparse(b) != "object" for b in node.bases)
                if direct or bases & known:
                    module.classes.append(ModelClass(node.name, _required_args(node), node.lineno))
                    known.add(node.name)
                    changed = True


def _required_args(node: ast.ClassDef) -> int:
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            args = item.args
            positional = [*args.posonlyargs, *args.args][1:]
            required = len(positional) - len(args.defaults)
            required += sum(1 for default in args.kw_defaults if default is None)
            return max(required, 0)
    return -1 if node.bases and ast.unparse(node.bases[0]).split(".")[-1] not in MODEL_BASES else 0


# ------------------------------------------------------------------ declarations

def _read_declarations(root: Path, result: Analysis) -> None:
    for path in sorted(root.glob("requirement*.txt")) + sorted(root.glob("requirements/*.txt")):
        for line in read_requirements_file(path, root):
            result.declared.append(Declared(line, path.relative_to(root).as_posix()))
    setup = root / "setup.py"
    if setup.is_file():
        requirements, imports_torch = parse_setup_py(setup.read_bytes())
        result.setup_imports_torch = imports_torch
        result.declared += [Declared(r, "setup.py") for r in requirements]
    result.declared += [Declared(r, "setup.cfg") for r in _setup_cfg(root / "setup.cfg")]
    result.declared += [Declared(r, "pyproject.toml") for r in _pyproject(root / "pyproject.toml")]
    for name in ("environment.yml", "environment.yaml", "conda.yml", "conda.yaml"):
        result.declared += [Declared(r, name) for r in parse_environment_yml(root / name)]
    for readme in sorted(root.glob("README*"))[:1]:
        result.declared += [Declared(r, readme.name) for r in readme_installs(readme)]


def read_requirements_file(path: Path, root: Path, depth: int = 0) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement")) and depth < 3:
            other = (path.parent / line.split(maxsplit=1)[-1].split("=")[-1]).resolve()
            if other.is_relative_to(root.resolve()):
                lines += read_requirements_file(other, root, depth + 1)
            continue
        if line.startswith("-"):
            continue  # pip options (-e ., --index-url, -f ...)
        lines.append(line)
    return lines


def parse_setup_py(source: bytes) -> tuple[list[str], bool]:
    """install_requires of a setup() call (literal lists, or names bound to literal lists), and
    whether setup.py imports torch (it then cannot build in an isolated environment)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return [], False
    bound: dict[str, ast.expr] = {}
    imports_torch = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound[node.targets[0].id] = node.value
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            imports_torch = imports_torch or any(n.split(".")[0] == "torch" for n in names)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] == "setup":
            for keyword in node.keywords:
                if keyword.arg in ("install_requires", "requires"):
                    found += _literal_strings(keyword.value, bound)
    return found, imports_torch


def _literal_strings(node: ast.expr, bound: dict[str, ast.expr], depth: int = 0) -> list[str]:
    if isinstance(node, ast.Name) and node.id in bound and depth < 3:
        return _literal_strings(bound[node.id], bound, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [e.value.strip() for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_strings(node.left, bound, depth + 1) + _literal_strings(node.right, bound, depth + 1)
    return []


def _setup_cfg(path: Path) -> list[str]:
    if not path.is_file():
        return []
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        value = parser.get("options", "install_requires", fallback="")
    except (configparser.Error, UnicodeDecodeError):
        return []
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def _pyproject(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
        return []
    project = data.get("project", {})
    deps = project.get("dependencies", []) if isinstance(project, dict) else []
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    found = [d for d in deps if isinstance(d, str)]
    if isinstance(poetry, dict):
        found += [name for name in poetry if name.lower() != "python"]
    return found


def parse_environment_yml(path: Path) -> list[str]:
    """Conda and pip dependencies of an environment file, with conda names mapped to PyPI's."""
    if not path.is_file():
        return []
    found: list[str] = []
    in_deps = in_pip = False
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split("#")[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith((" ", "-", "\t")):
            in_deps = line.strip().startswith("dependencies")
            in_pip = False
            continue
        item = line.strip()
        if not in_deps or not item.startswith("-"):
            continue
        item = item[1:].strip()
        if item.startswith("pip:"):
            in_pip = True
            continue
        if in_pip and raw.startswith((" " * 4, "\t\t")) or in_pip and len(raw) - len(raw.lstrip()) > 2:
            found.append(item)
            continue
        in_pip = False
        name, _, version = re.split(r"::", item)[-1].partition("=")
        name = name.strip()
        mapped = CONDA_TO_PYPI.get(name.lower(), name)
        if mapped:
            version = version.strip("=").split("=")[0]
            found.append(f"{mapped}=={version}" if version and re.fullmatch(r"[\d.]+", version) else mapped)
    return found


_PIP_LINE = re.compile(r"^\s*(?:\$\s*)?(?:python3? -m )?pip3? install\s+(.+)$")


def readme_installs(path: Path) -> list[str]:
    """Packages of ``pip install`` lines in the README (not files, folders, URLs or options)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: list[str] = []
    for line in text.splitlines():
        match = _PIP_LINE.match(line.strip().strip("`"))
        if not match:
            continue
        for word in match.group(1).split():
            word = word.strip("`'\"")
            if word.startswith("-") or "/" in word or word in (".", "..") or word.endswith((".txt", ".whl")):
                if word in ("-r", "-e", "--requirement"):
                    break
                continue
            if re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\]]*([<>=!~]=?[\w.*]+)?$", word):
                found.append(word)
    return found


def _readme_title(root: Path) -> str | None:
    for readme in sorted(root.glob("README*"))[:1]:
        try:
            for line in readme.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("# ") and len(line) > 3:
                    return re.sub(r"[\[\]*`]|\(http[^)]*\)", "", line[2:]).strip()[:120] or None
        except OSError:
            return None
    return None


# ------------------------------------------------------------------ native code

def _read_native(root: Path, files: list[Path], result: Analysis) -> None:
    for setup in sorted(root.rglob("setup.py")):
        if any(part in SKIP_DIRS for part in setup.relative_to(root).parts[:-1]):
            continue
        text = setup.read_text(encoding="utf-8", errors="replace")
        folder = setup.parent.relative_to(root).as_posix() or "."
        named = set(re.findall(r"Extension\(\s*(?:name\s*=\s*)?['\"]([\w.]+)['\"]", text))
        named |= {p.stem for p in setup.parent.rglob("*.pyx")}
        result.extension_modules.update(named)
        result.extensions_by_folder[folder] = named
        if re.search(r"CUDAExtension|nvcc|CUDA_HOME|\.cu['\"]", text):  # needs the CUDA toolkit to build
            result.cuda_extensions.append(folder)
        elif re.search(r"ext_modules|CppExtension|cythonize|Extension\(", text):
            result.native.append(folder)
    result.pyx = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.pyx")
                        if not any(part in SKIP_DIRS for part in p.relative_to(root).parts[:-1]))
    result.extension_modules.update(Path(p).stem for p in result.pyx)
