"""Sparse storage (Han et al. 2015, Sec. 5; CSR: Deep Compression, Han et al. 2016, Sec. 2): the
CSR container, the paper's 8-bit relative-index layout the engine holds (`RelativeIndexMatrix`),
byte accounting (dense, CSR, the paper's relative indices), the sparse file format
(`save_sparse`, `load_sparse`) and a sparse file that rebuilds its model (`load_model`). Running
a model from it is `minprune.inference`.
"""

from minprune.sparse.csr import CSRMatrix, validate_csr_arrays
from minprune.sparse.export import load_sparse, save_sparse
from minprune.sparse.model_files import (
    ModelFile,
    NetworkFile,
    load_model,
    read_model_file,
    read_network_file,
)
from minprune.sparse.relative import RelativeIndexMatrix
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
    "read_network_file",
    "NetworkFile",
    "RelativeIndexMatrix",
]
