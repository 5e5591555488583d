"""Sparse storage (Han et al. 2015, Sec. 5; CSR: Deep Compression, Han et al. 2016, Sec. 2): the
CSR container, byte accounting (dense, CSR, the paper's relative indices), the sparse file format
(`save_sparse`, `load_sparse`) and a sparse file that rebuilds its model (`load_model`). Running
a model from it is `minprune.inference`.
"""

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays
from minprune.sparse.export import load_sparse, save_sparse
from minprune.sparse.model_files import ModelFile, load_model, read_model_file
from minprune.sparse.storage import StorageReport, relative_index_fillers, storage_report

__all__ = [
    "CSRMatrix",
    "validate_csr_arrays",
    "StorageReport",
    "storage_report",
    "relative_index_fillers",
    "save_sparse",
    "load_sparse",
    "load_model",
    "read_model_file",
    "ModelFile",
]
