"""Inference from pruned weights (Han et al. 2015, Sec. 5: sparse matrices with relative
indices; CSR: Deep Compression, Han et al. 2016, Sec. 2; column layout: EIE): checked CSR
products, and the engine that runs a pruned model or its sparse file holding each layer once in
the paper's 8-bit format (`compile_model`), on the CPU (Numba) or a CUDA GPU.
"""

from minprune.inference.engine import SparseNetwork, compile_model
from minprune.inference.products import conv2d_forward_csr, linear_forward_csr, spmm, spmv

__all__ = [
    "spmv",
    "spmm",
    "linear_forward_csr",
    "conv2d_forward_csr",
    "compile_model",
    "SparseNetwork",
]
