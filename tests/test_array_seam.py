"""No op or layer computes with numpy except through the seam (`minprune.base.arrays.array_module`),
checked on the source (AST), so a model on the GPU never meets a NumPy-only call.

The rule, for the autograd core, the ops, the functional forms, the layers and the optimiser
(`SCOPE`): the numpy module may be named only

- for a type: ``np.float32``, ``np.int64``, ``np.integer``, ``np.ndarray``, ... (`TYPE_NAMES`) --
  in ``dtype=``, ``isinstance`` and annotations these pick or test a type and compute nothing
  (a dtype means the same to CuPy);
- in a comparison, ``xp is np`` -- how `minprune.autograd.backend` picks the Numba kernels for
  NumPy arrays;
- or where `ALLOWED` names the module, the function and the attribute, with the reason.

Everything else -- ``np.zeros``, ``np.asarray``, ``np.sign``, ``from numpy import ...``, passing
``np`` itself as an argument -- is an error: it would make a NumPy array from CuPy data, or fail
on it. Array maths goes through ``xp = array_module(...)`` or the arrays' own methods. Numba is
not imported here either: its kernels live in `minprune.kernels`, called on the NumPy branch.
A stale `ALLOWED` entry is an error too, so the list stays exactly the exceptions there are.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minprune"

# The autograd and its plain backend (what a GPU runs), the layers and the optimiser. Not
# autograd/fast.py: the fast backend is the NumPy-only one, reached through `backend.ops_for`.
SCOPE = sorted(
    [PACKAGE / "autograd" / name for name in ("tensor.py", "functional.py", "plain.py",
                                               "backend.py")]
    + [PACKAGE / "training" / "optim.py"]
    + list((PACKAGE / "autograd" / "ops").glob("*.py"))
    + list((PACKAGE / "nn").glob("*.py"))
)

TYPE_NAMES = {
    "bool_", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "integer", "floating", "number", "generic",
    "ndarray", "dtype",
}

# (file relative to minprune/, enclosing function, numpy attribute): why it is not array maths
# on a model's data.
ALLOWED = {
    ("nn/layers.py", "_MaskedLayer._init_weight", "ones"):
        "a new layer's all-ones mask is born on the host, like its weight (drawn from "
        "minprune.base.random's NumPy generator, as PyTorch creates parameters on the CPU); "
        "model.to('cuda') moves them",
    ("nn/layers.py", "_MaskedLayer._init_weight", "zeros"):
        "a new layer's zero bias, born on the host with the weight (see ones)",
}


class _NumpyUses(ast.NodeVisitor):
    """Collects (function qualname, what, line) for every use of numpy that is not a type name
    or a comparison operand."""

    def __init__(self):
        self.aliases: set[str] = set()
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int]] = []
        self._checked: set[int] = set()  # Name nodes already judged as part of a larger node

    def _where(self) -> str:
        return ".".join(self.scope) or "<module>"

    def _report(self, what: str, node) -> None:
        self.found.append((self._where(), what, node.lineno))

    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top == "numba":
                self._report(f"import {alias.name}", node)
            elif alias.name == "numpy":
                self.aliases.add(alias.asname or "numpy")
            elif top == "numpy":
                self._report(f"import {alias.name}", node)

    def visit_ImportFrom(self, node):
        top = (node.module or "").split(".")[0]
        if top in ("numpy", "numba"):
            self._report(f"from {node.module} import ...", node)

    def _visit_scope(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_scope

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            self._checked.add(id(node.value))
            if node.attr not in TYPE_NAMES:
                self._report(node.attr, node)
        self.generic_visit(node)

    def visit_Compare(self, node):
        for operand in [node.left, *node.comparators]:
            if isinstance(operand, ast.Name) and operand.id in self.aliases:
                self._checked.add(id(operand))
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in self.aliases and id(node) not in self._checked:
            self._report(f"the module itself ({node.id})", node)


def numpy_uses(source: str) -> list[tuple[str, str, int]]:
    visitor = _NumpyUses()
    visitor.visit(ast.parse(source))
    return visitor.found


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", SCOPE, ids=_relative)
def test_ops_layers_and_optimiser_use_numpy_only_through_the_seam(path):
    name = _relative(path)
    bad = [
        f"{name}:{line} {where} uses numpy: {what}"
        for where, what, line in numpy_uses(path.read_text())
        if (name, where, what) not in ALLOWED
    ]
    assert not bad, (
        "array maths must go through xp = array_module(...) (tests/test_array_seam.py):\n"
        + "\n".join(bad)
    )


def test_every_allowed_exception_is_still_needed():
    used = {
        (_relative(path), where, what)
        for path in SCOPE
        for where, what, _ in numpy_uses(path.read_text())
    }
    assert not set(ALLOWED) - used, f"stale ALLOWED entries: {sorted(set(ALLOWED) - used)}"


def test_the_rule_itself():
    source = """
import numpy as np
import numba
from numpy import zeros

def forward(x, xp):
    a = np.zeros(3)
    b = x.astype(np.float32)
    if xp is np:
        pass
    isinstance(x, np.ndarray)
    helper(np)
"""
    assert [(what, line) for _, what, line in numpy_uses(source)] == [
        ("import numba", 3), ("from numpy import ...", 4), ("zeros", 7),
        ("the module itself (np)", 12),
    ]
    assert numpy_uses(source)[2][0] == "forward"
