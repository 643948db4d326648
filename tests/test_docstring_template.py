"""Every public name of randadv has a docstring of one template, and its Example runs.

Which names: every name in the ``__all__`` of every module of ``randadv`` that defines one
(packages and plain modules alike, found by reading the source, so a new one is checked without
being listed here). A name exported by several modules is checked once, where it is defined.

The blocks, each a line at the docstring's left margin (``Paper:``, ...) followed by text on
that line or by indented lines:

- ``Paper:`` always. Either ``none (utility: ...)`` or a citation with a year and a place in
  the paper (``Bartlett et al. 2021, Theorem 1.1``; ``Bubeck et al. 2021, eq. (1)``).
- ``Arguments:`` for a function whose call takes at least one parameter (``self`` and ``cls``
  aside); every parameter's name appears in it. Omitted only where the call takes none.
- ``Returns:`` for a function (``None`` for one called for its effect).
- ``Attributes:`` or ``Arguments:`` (or both) for a class: what an instance holds or is built
  from; every parameter of the class's call is named in one of them (a dataclass's fields
  in ``Attributes:``). An enum's members are its attributes.
- ``Example:`` always: a doctest (``>>>`` lines) that imports what it uses; it is run here with
  one thread and fixed seeds, on small sizes. Float results are printed rounded or as booleans.
  ``>>>`` appears nowhere else in the docstring.

A constant has no docstring of its own: its docstring is the string literal right after its
assignment in the defining module (an attribute docstring); it needs ``Paper:`` and
``Example:``. An Example that needs MNIST is in ``NEEDS_MNIST`` and is skipped where MNIST is
not found (as the other MNIST tests are).
"""

from __future__ import annotations

import ast
import doctest
import enum
import importlib
import inspect
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

SRC = Path(__file__).resolve().parent.parent / "src" / "randadv"

# Examples that read the MNIST files
NEEDS_MNIST = {
    "randadv.data.binary.load_binary_mnist",
    "randadv.data.mnist.load_mnist",
}

BLOCKS = ("Paper", "Arguments", "Returns", "Attributes", "Example")
HEADER = re.compile(r"^(" + "|".join(BLOCKS) + r"):(.*)$")
LOCATOR = re.compile(
    r"\b(Theorem|Lemma|Corollary|Remark|Definition|Proposition|Section|Sec\.|eq\.|eqs\.|"
    r"Equation|Figure|Figures|Fig\.|Algorithm|Appendix|Table)", re.I)
YEAR = re.compile(r"\b(19|20)\d\d\b")


@dataclass(frozen=True)
class Public:
    qualname: str        # defining module + name
    obj: object
    doc: str
    kind: str            # "function" | "class" | "constant"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_of(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def _constant_home(module: str, name: str) -> tuple[str, str | None]:
    """(defining module, attribute docstring) of a module-level constant ``name``."""
    path = SRC.parent / (module.replace(".", "/"))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return _constant_home(node.module, name)
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            nxt = tree.body[i + 1] if i + 1 < len(tree.body) else None
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                return module, inspect.cleandoc(nxt.value.value)
            return module, None
    raise AssertionError(f"{module}.{name}: no assignment found")


def public_names() -> list[Public]:
    found: dict[str, Public] = {}
    for path in sorted(SRC.rglob("*.py")):
        names = _all_of(ast.parse(path.read_text()))
        if not names:
            continue
        module = _module_name(path)
        mod = importlib.import_module(module)
        for name in names:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isroutine(obj):
                kind = "class" if inspect.isclass(obj) else "function"
                qual = f"{obj.__module__}.{name}"
                doc = inspect.getdoc(obj) if obj.__doc__ else ""
            else:
                kind = "constant"
                home, doc = _constant_home(module, name)
                qual = f"{home}.{name}"
            found.setdefault(qual, Public(qual, obj, doc or "", kind))
    return sorted(found.values(), key=lambda p: p.qualname)


def blocks(doc: str) -> dict[str, str]:
    """Block name -> its text (the header line's rest and the indented lines below it)."""
    out: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        m = HEADER.match(line)
        if m and m.group(1) not in out:
            current = m.group(1)
            out[current] = [m.group(2).strip()]
        elif current is not None and (line.startswith((" ", "\t")) or not line.strip()):
            out[current].append(line)
        else:
            current = None
    return {k: "\n".join(v).strip("\n") for k, v in out.items()}


def call_parameters(p: Public) -> list[str]:
    target = p.obj
    if p.kind == "constant":
        return []
    if inspect.isclass(target) and issubclass(target, enum.Enum):
        return ["value"]          # Norm("l2"): the metaclass's other parameters are Enum's
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [n for n in sig.parameters if n not in ("self", "cls")]


PUBLIC = public_names()
IDS = [p.qualname for p in PUBLIC]


def test_the_sets_name_real_public_names():
    names = set(IDS)
    assert len(names) > 150
    assert NEEDS_MNIST <= names, sorted(NEEDS_MNIST - names)


@pytest.mark.parametrize("p", PUBLIC, ids=IDS)
def test_docstring_has_the_template_blocks(p: Public):
    assert p.doc, f"{p.qualname}: no docstring"
    b = blocks(p.doc)
    need = ["Paper", "Example"]
    params = call_parameters(p)
    if p.kind == "function":
        need += ["Returns"] + (["Arguments"] if params else [])
    elif p.kind == "class" and "Arguments" not in b:
        need.append("Attributes")
    missing = [k for k in need if not b.get(k, "").strip()]
    assert not missing, f"{p.qualname}: missing or empty blocks {missing}"

    paper = b["Paper"].strip()
    if not paper.startswith("none (utility:"):
        assert YEAR.search(paper) and LOCATOR.search(paper), (
            f"{p.qualname}: Paper: must cite a year and a theorem/equation/section/figure, or "
            f"say 'none (utility: ...)'; got {paper!r}")
    if params:
        named = b.get("Arguments", "") + "\n" + (
            b.get("Attributes", "") if p.kind == "class" else "")
        words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", named))
        absent = [n for n in params if n not in words]
        assert not absent, f"{p.qualname}: Arguments:/Attributes: do not name {absent}"
    example = b["Example"]
    assert ">>>" in example, f"{p.qualname}: Example: has no >>> line"
    outside = p.doc.replace(example, "")
    assert ">>>" not in outside, f"{p.qualname}: >>> outside the Example block"


def _mnist_found() -> bool:
    """Whether the default search finds the MNIST test split (what the Examples read);
    ``mnist_dirs`` alone lists the places searched, found or not."""
    from randadv.data.errors import DataNotFoundError
    from randadv.data.mnist import find_mnist_file

    try:
        find_mnist_file("t10k-images-idx3-ubyte")
        find_mnist_file("t10k-labels-idx1-ubyte")
    except DataNotFoundError:
        return False
    return True


@pytest.mark.parametrize("p", PUBLIC, ids=IDS)
def test_example_runs(p: Public, tmp_path, monkeypatch):
    example = blocks(p.doc).get("Example", "")
    if ">>>" not in example:
        pytest.skip("no Example (test_docstring_has_the_template_blocks fails for it)")
    if p.qualname in NEEDS_MNIST and not _mnist_found():
        pytest.skip("MNIST not found")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # the Examples' temporary files
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    test = doctest.DocTestParser().get_doctest(
        inspect.cleandoc(example), {}, p.qualname, p.qualname, 0)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    try:
        runner.run(test, out=out.append)
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
    assert runner.failures == 0, "".join(out)
