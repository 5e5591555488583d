"""Dependencies point one way (STYLE.md): the CSR container and the kernels take raw arrays and
import neither the autograd nor the layers; the sparse storage modules import no kernels.

Checked on the source (AST), because importing any ``minprune`` submodule runs the package's
``__init__``, which itself imports the autograd.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "minprune"
FORBIDDEN_EVERYWHERE = ("minprune.tensor", "minprune.nn", "minprune.ops", "minprune.optim")
# The storage layer (CSR container, accounting, file format) and the kernels. The sparse inference
# engine comes after them in the data flow and may import both, and the layers.
STORAGE_MODULES = [PACKAGE / "sparse" / name for name in ("csr.py", "storage.py", "export.py")]
KERNEL_MODULES = sorted(
    [
        *PACKAGE.glob("kernels/csr_*.py"),
        *PACKAGE.glob("kernels/masked_*.py"),
        *PACKAGE.glob("kernels/sparse_linear_*.py"),
    ]
    + [PACKAGE / "kernels" / "argument_checks.py", PACKAGE / "kernels" / "cuda_support.py"]
)


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path", STORAGE_MODULES + KERNEL_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_no_autograd_or_layers(path):
    imported = _imported_modules(path)
    bad = [name for name in imported if name.startswith(FORBIDDEN_EVERYWHERE) or name == "minprune"]
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", STORAGE_MODULES, ids=lambda p: p.name)
def test_storage_imports_no_kernels(path):
    assert not [name for name in _imported_modules(path) if name.startswith("minprune.kernels")]
