"""Sparse storage of pruned weights (Han et al. 2015, Sec. 4): the CSR container, byte accounting
(dense, CSR, the paper's relative indices), and the sparse state_dict file format.

Kernels that compute with a `CSRMatrix` live in ``minprune.kernels`` (csr_cpu, csr_cuda, csr_ops);
the storage modules here (csr, storage, export) import no kernels, no autograd and no layers.
``engine`` comes last in the data flow: ``minprune.sparse.compile(model, backend="cpu")`` turns a
pruned model into a forward-only network on the CSR kernels. It is loaded on first use, because
the kernels themselves import ``minprune.sparse.csr``.
"""

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays
from minprune.sparse.export import load_sparse, save_sparse
from minprune.sparse.storage import StorageReport, relative_index_fillers, storage_report

__all__ = [
    "compile",
    "SparseNetwork",
    "CSRMatrix",
    "validate_csr_arrays",
    "StorageReport",
    "storage_report",
    "relative_index_fillers",
    "save_sparse",
    "load_sparse",
]


def __getattr__(name):
    if name in ("compile", "SparseNetwork"):
        from minprune.sparse import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'minprune.sparse' has no attribute {name!r}")
