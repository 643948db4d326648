"""docs/architecture.md's rule, checked on the source: a package imports only from packages in
layers below its own (issue 18). Every ``randadv`` import is read from the syntax tree, including
imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import randadv

SRC = Path(randadv.__file__).parent

# bottom to top; a package may import from any strictly lower layer
LAYERS = [
    {"errors"},
    {"validation"},
    {"nets", "data", "stats"},
    {"theory", "protocol"},
    {"arch"},
    {"exact"},
    {"attacks"},
    {"train"},
    {"report"},
    {"framework"},
    {"experiments"},
    {"runner"},
    {"cli", "__init__"},
    {"__main__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "randadv" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_every_package_has_a_layer():
    packages = {_package_of(p) for p in SRC.rglob("*.py")}
    assert packages <= set(LEVEL), f"no layer for {sorted(packages - set(LEVEL))}"


def test_no_import_runs_up_or_sideways():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        src = _package_of(path)
        for line, dst in _imports(path):
            if dst != src and LEVEL[dst] >= LEVEL[src]:
                bad.append(f"{path.relative_to(SRC)}:{line} {src} -> {dst}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "mod.py"
    bad.write_text("def f():\n    from randadv.experiments import base\n")
    assert _imports(bad) == [(2, "experiments")]
