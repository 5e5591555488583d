"""The sparse engine's plain path: each layer of a compiled model as a few lines of NumPy.

This is the code a reader reads: what the fast CPU stages (`engine_cpu`, `fused_chain`, the Numba
kernels of `minprune.kernels.inference`) compute, without their speed. `compile_model(model)`
builds these stages instead when `minprune.base.settings.backend()` is "plain"
(``MINPRUNE_BACKEND=plain`` or ``use_backend("plain")``); the tests hold both equal to float32
tolerance. The product with a pruned weight is the CSR definition (Deep Compression, Han et al.
2016, Sec. 2: the pruned layers stored as CSR), row by row:

    y[:, r] = sum over row r's stored weights k of data[k] * x[:, indices[k]]

A conv layer is that product on its im2col patches; max-pooling and ReLU are NumPy one-liners.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from minprune.autograd import plain
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minprune.sparse.csr import CSRMatrix

__all__ = ["csr_times", "conv2d_patches", "plain_stages"]


def csr_times(csr: CSRMatrix, x: np.ndarray) -> np.ndarray:
    """x (N, cols) @ W.T -> (N, rows) float32, for W (rows, cols) stored as CSR: row r of W holds
    the weights ``data[indptr[r]:indptr[r + 1]]`` at the columns ``indices[same range]``."""
    y = np.empty((x.shape[0], csr.shape[0]), dtype=np.float32)
    for row in range(csr.shape[0]):
        stored = slice(csr.indptr[row], csr.indptr[row + 1])
        y[:, row] = x[:, csr.indices[stored]] @ csr.data[stored]  # an empty row gives 0
    return y


def conv2d_patches(images: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """im2col: (N * OH * OW, C * K * K) patches of images (N, C, H, W), row (n, oh, ow) holding
    the window of output pixel (oh, ow), its columns in the order of weight.reshape(O, C*K*K) --
    the training path's plain im2col (`minprune.autograd.plain.im2col`)."""
    return plain.im2col(images, kernel, kernel, stride, padding)


def _linear(op):
    def forward(x):
        return csr_times(op.csr, x) + op.bias

    return forward, "plain NumPy: CSR rows times x, + bias"


def _conv2d(op):
    layer = op.layer
    out_channels, out_h, out_w = op.output_shape

    def forward(images):
        patches = conv2d_patches(images, layer.kernel_size, layer.stride, layer.padding)
        rows = csr_times(op.csr, patches) + op.bias  # (N * OH * OW, O)
        out = rows.reshape(images.shape[0], out_h, out_w, out_channels).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out)

    return forward, "plain NumPy: im2col patches times CSR rows, + bias"


def _max_pool2d(op):
    kernel, stride = op.layer.kernel_size, op.layer.stride

    def forward(x):
        windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
        return windows.max(axis=(4, 5))

    return forward, "plain NumPy: max over sliding windows"


def _relu(op):
    return (lambda x: np.maximum(x, np.float32(0.0))), "plain NumPy: np.maximum(x, 0)"


def _flatten(op):
    return (lambda x: x.reshape(x.shape[0], *op.output_shape)), "reshape"


def _dropout(op):
    return None, "identity (inference)"


# Layer type -> a builder of (forward, what it runs as); Dropout builds no forward.
_PLAIN = {
    Linear: _linear,
    Conv2d: _conv2d,
    MaxPool2d: _max_pool2d,
    ReLU: _relu,
    Flatten: _flatten,
    Dropout: _dropout,
}


def plain_stages(ops: list) -> tuple[list, list[str]]:
    """One NumPy stage per layer of the engine's checked ``ops`` (Dropout: none), after one that
    gives the input its per-sample shape; returns (stages, runs_as per op)."""
    input_shape = ops[0].input_shape
    stages, runs_as = [lambda x: x.reshape(x.shape[0], *input_shape)], []
    for op in ops:
        forward, label = _PLAIN[op.type](op)
        if forward is not None:
            stages.append(forward)
        runs_as.append(label)
    return stages, runs_as
