"""Sparse storage (Han et al. 2015, Sec. 4): the CSR container, byte accounting (dense, CSR, the
paper's relative indices) and the sparse file format. Running a model from it is
`minprune.inference`.
"""

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays
from minprune.sparse.export import load_sparse, save_sparse
from minprune.sparse.storage import StorageReport, relative_index_fillers, storage_report

__all__ = [
    "CSRMatrix",
    "validate_csr_arrays",
    "StorageReport",
    "storage_report",
    "relative_index_fillers",
    "save_sparse",
    "load_sparse",
]
