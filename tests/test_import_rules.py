"""Dependencies point one way along the data flow (STYLE.md), checked on the source (AST):

    data -> autograd -> nn -> training -> pruning -> sparse storage -> inference -> commands

``base`` (the array seam, the random generator, the paper's numbers, settings, files, kill
points) and ``kernels`` (raw arrays) import nothing above them, so any step may use them. Nothing
imports the package's own ``__init__``, and no module loads names lazily (module ``__getattr__``).
Only the optional bridge ``minprune.interop`` imports torch, and no module imports the bridge.
Ranks are per folder: a module's folder says its step and what it may import.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minprune"

# (folder, rank): a module may import modules of its own rank or lower. Each folder of the package
# is one step of the data flow; a new folder must be placed here, so that its place is a decision.
LAYERS = [
    ("minprune.base", 0),  # the array seam, random generator, settings, the paper's numbers, files
    ("minprune.kernels", 0),  # raw-array Numba kernels beside their NumPy references
    ("minprune.data", 1),
    ("minprune.autograd", 2),
    ("minprune.nn", 3),
    ("minprune.training", 4),
    ("minprune.prune", 5),
    ("minprune.sparse", 6),  # CSR storage
    ("minprune.compress", 6),  # Deep Compression's quantization and Huffman coding (after prune)
    ("minprune.inference", 7),
    ("minprune.commands", 8),
    ("minprune.__main__", 8),
    ("minprune.interop", 8),  # optional bridges (torch): imported by no module, see below
    ("minprune", 9),  # the package's __init__: the public API, imported by no module inside
]
LEAVES_IMPORT_ONLY = {  # leaf modules: what else they may import, beyond the standard library
    "minprune.kernels": ("numpy", "numba", "minprune.kernels", "minprune.base.tuning"),
    "minprune.base": ("numpy", "cupy", "minprune.base"),  # cupy: optional, imported on demand
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _rank(name: str) -> int:
    for prefix, rank in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{name} has no place in LAYERS (tests/test_import_rules.py)")


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) for every import; ``from a import b`` counts as ``a.b`` when that is a
    module of the package, else as ``a`` -- and ``from minprune import x`` as ``minprune``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "minprune":
            found.append(("minprune", node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((full if full in MODULES else node.module, node.lineno))
    return found


def test_every_module_sits_in_a_folder_of_the_data_flow():
    loose = [path.name for path in PACKAGE.glob("*.py") if path.name not in ("__init__.py",
                                                                               "__main__.py")]
    assert not loose, f"modules loose at the package root: {loose}; put each in its step's folder"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_import_points_down_the_data_flow(name):
    if name == "minprune":
        return  # the public API gathers everything
    rank = _rank(name)
    for imported, line in _imports(MODULES[name]):
        if imported == "minprune":
            pytest.fail(f"{name}:{line} imports the package's __init__; name the submodule")
        if imported.startswith("minprune."):
            assert _rank(imported) <= rank, (
                f"{name}:{line} imports {imported}, which comes later in the data flow"
            )


@pytest.mark.parametrize(
    "name", [n for n in sorted(MODULES) if n.startswith(tuple(LEAVES_IMPORT_ONLY))]
)
def test_base_and_kernels_are_leaves(name):
    allowed = next(v for k, v in LEAVES_IMPORT_ONLY.items() if name.startswith(k))
    for imported, line in _imports(MODULES[name]):
        top = imported.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        assert imported.startswith(allowed), f"{name}:{line} imports {imported}"


BRIDGE = "minprune.interop"  # optional: needs `pip install "minprune[torch]"`


def _in_bridge(name: str) -> bool:
    return name == BRIDGE or name.startswith(BRIDGE + ".")


@pytest.mark.parametrize("name", [n for n in sorted(MODULES) if not _in_bridge(n)])
def test_only_the_bridge_imports_torch_and_nothing_imports_the_bridge(name):
    for imported, line in _imports(MODULES[name]):
        assert not (imported.split(".")[0].startswith("torch") or _in_bridge(imported)), (
            f"{name}:{line} imports {imported}; only {BRIDGE} may import torch, and no module "
            f"imports {BRIDGE}"
        )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_level_getattr(name):
    tree = ast.parse(MODULES[name].read_text())
    assert not any(
        isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body
    ), f"{name} defines a module-level __getattr__ (load names eagerly instead)"
