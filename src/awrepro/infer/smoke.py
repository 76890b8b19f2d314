"""Smoke scripts that `new` writes: a probe, then an import-level or a forward-pass test.

The probe imports the model modules, checks their classes are there, and for torch classes
whose constructor needs no argument tries a forward pass on a few plausible random inputs; it
prints what worked on one line (``AWREPRO-PROBE {json}``). The entry gets a forward-pass test
when one worked, else an import-level one that a human can upgrade.
"""

from __future__ import annotations

import json
import re

PROBE_TAG = "AWREPRO-PROBE"
OK_IMPORT = "OK import"
OK_FORWARD = "OK forward"

# Plausible inputs, the most common shapes of the era's models first: images, sequences of
# features, token ids, flat vectors.
INPUTS = (
    "torch.randn(2, 3, 32, 32)",
    "torch.randn(2, 8, 16)",
    "torch.randint(0, 10, (2, 8))",
    "torch.randn(2, 16)",
    "torch.randn(2, 3, 64, 64)",
    "torch.randn(2, 1, 28, 28)",
)

SHIMS = {
    # Python 3.10 removed the ABC aliases of collections (collections.Iterable and friends).
    "collections-abc": ("import collections, collections.abc\n"
                        "for _name in ('Iterable', 'Mapping', 'MutableMapping', 'Sequence', 'Callable', "
                        "'MutableSet', 'Set', 'Hashable', 'Sized', 'Container', 'Iterator', 'OrderedDict'):\n"
                        "    if not hasattr(collections, _name):\n"
                        "        setattr(collections, _name, getattr(collections.abc, _name))\n"),
    # A CPU build of torch says torch.version.cuda is None; code of the era parses it at import.
    "torch-cuda-version": ("import torch\n"
                           "torch.version.cuda = torch.version.cuda or '10.0'\n"),
}


def prelude(shims: list[str]) -> str:
    return "".join(SHIMS[name] for name in shims)


def probe_script(modules: dict[str, list[tuple[str, int]]], shims: list[str]) -> str:
    """``modules``: module -> [(class, required constructor args)]."""
    return prelude(shims) + _PROBE.replace("MODULES", json.dumps(modules)).replace("INPUTS", json.dumps(INPUTS))


_PROBE = '''import importlib, json, sys, traceback
modules = MODULES
inputs = INPUTS
found = {}
for name, classes in modules.items():
    module = importlib.import_module(name)
    found[name] = [c for c, _ in classes if hasattr(module, c)]
    missing = [c for c, _ in classes if not hasattr(module, c)]
    assert not missing, f"{name} lacks {missing}"
forward = []
errors = []  # why the biggest attempts failed: `new` may know a repair
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    for name, classes in modules.items():
        module = sys.modules[name]
        for cls, required in classes:
            obj = getattr(module, cls)
            if required != 0 or not isinstance(obj, type) or not issubclass(obj, torch.nn.Module) or cls.startswith("_"):
                continue
            try:
                model = obj().eval()
                size = sum(p.numel() for p in model.parameters())
            except Exception:
                errors.append(traceback.format_exc())
                continue
            if size > 50_000_000:
                continue
            for text in inputs:
                try:
                    with torch.no_grad():
                        out = model(eval(text))
                except Exception:
                    if text == inputs[0]:
                        errors.append(traceback.format_exc())
                    continue
                shape = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
                forward.append({"module": name, "class": cls, "input": text, "params": int(size), "out": str(shape)})
                break
print("PROBE_TAG", json.dumps({"found": found, "forward": forward, "errors": errors[-3:]}))
print("OK_IMPORT", ", ".join(modules))
'''.replace("PROBE_TAG", PROBE_TAG).replace("OK_IMPORT", OK_IMPORT)


def read_probe(output: str) -> dict[str, object] | None:
    for line in output.splitlines():
        if line.startswith(PROBE_TAG + " "):
            try:
                data = json.loads(line[len(PROBE_TAG) + 1:])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def probe_errors(probe: dict[str, object]) -> str:
    listed = probe.get("errors")
    return "\n".join(str(e) for e in listed) if isinstance(listed, list) else ""


def best_forward(probe: dict[str, object]) -> dict[str, str] | None:
    """The forward pass of the biggest model that ran (the paper's model rather than a layer of it)."""
    listed = probe.get("forward")
    runs = [r for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
    return max(runs, key=lambda r: int(r.get("params", 0))) if runs else None


def import_script(modules: dict[str, list[tuple[str, int]]], shims: list[str]) -> str:
    lines = [prelude(shims).rstrip("\n")] if shims else []
    for name, classes in modules.items():
        names = ", ".join(c for c, _ in classes[:6])
        lines.append(f"from {name} import {names}" if names else f"import {name}")
    lines.append(f"print({OK_IMPORT!r}, {', '.join(modules)!r})")
    return "\n".join(lines) + "\n"


def forward_script(run: dict[str, str], shims: list[str]) -> str:
    lines = [prelude(shims).rstrip("\n")] if shims else []
    lines += ["import torch", f"from {run['module']} import {run['class']}",
              f"model = {run['class']}().eval()", "with torch.no_grad():", f"    out = model({run['input']})",
              f"print({OK_FORWARD!r}, {run['class']!r}, tuple(out.shape) if hasattr(out, 'shape') else type(out).__name__)"]
    return "\n".join(lines) + "\n"


def expect_for(level: str) -> str:
    return re.escape(OK_FORWARD if level == "smoke" else OK_IMPORT)
