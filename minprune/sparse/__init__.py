"""Sparse storage and inference (Han et al. 2015, Sec. 4): the CSR container, byte accounting
(dense, CSR, the paper's relative indices), the sparse file format, products with CSR weights,
and the engine that runs a pruned model on them (`compile_model`).
"""

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays
from minprune.sparse.engine import SparseNetwork, compile_model
from minprune.sparse.export import load_sparse, save_sparse
from minprune.sparse.products import conv2d_forward_csr, linear_forward_csr, spmm, spmv
from minprune.sparse.storage import StorageReport, relative_index_fillers, storage_report

__all__ = [
    "CSRMatrix",
    "validate_csr_arrays",
    "StorageReport",
    "storage_report",
    "relative_index_fillers",
    "save_sparse",
    "load_sparse",
    "spmv",
    "spmm",
    "linear_forward_csr",
    "conv2d_forward_csr",
    "compile_model",
    "SparseNetwork",
]
