"""Numba CPU kernels for CSR weights: SpMV, SpMM and sparse conv2d over im2col patches.

Plain Python functions jitted by assignment, so ``NUMBA_DISABLE_JIT=1`` runs the same code as
Python. No checking here: `minprune.sparse.products` passes a validated `CSRMatrix`'s arrays.
``prange`` runs only over independent output rows, so no two threads write the same element.
Two tuning choices (benchmarks/sparse_spmv.py): unsigned index views (`unsigned_index_views`)
spare Numba a negative-index test per access, and ``fastmath={"reassoc", "contract"}`` lets LLVM
split a row's float32 sum over SIMD lanes (NaN and infinity still propagate).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["spmv_cpu", "spmm_cpu", "conv2d_patches_cpu", "unsigned_index_views"]

_FASTMATH = {"reassoc", "contract"}


def unsigned_index_views(indptr, indices) -> tuple[np.ndarray, np.ndarray]:
    """(indptr as uint64, indices as uint32): zero-copy views of validated, non-negative int64 /
    int32 CSR index arrays, which spare Numba its negative-index wrap-around tests."""
    return indptr.view(np.uint64), indices.view(np.uint32)


def _spmv(indptr, indices, data, bias, x, out):
    """out[row] = bias[row] + sum_{k in row} data[k] * x[indices[k]]  (A rows x cols, x (cols,)).

    for row in prange(rows):                      # independent rows, one writer each
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[indices[k]]
        out[row] = total + bias[row]
    """
    for row in prange(out.shape[0]):
        total = np.float32(0.0)
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * x[indices[k]]
        out[row] = total + bias[row]


def _spmm(indptr, indices, data, bias, dense, out):
    """out (rows, n) = A (rows, cols) @ dense (cols, n) + bias[:, None].

    for row in prange(rows):
        accumulator[:] = bias[row]                # n floats, stays in L1
        for k in range(indptr[row], indptr[row + 1]):
            accumulator[:] += data[k] * dense[indices[k], :]   # contiguous, vectorised
        out[row, :] = accumulator
    """
    columns = dense.shape[1]
    for row in prange(out.shape[0]):
        accumulator = np.full(columns, bias[row], dtype=np.float32)
        for k in range(indptr[row], indptr[row + 1]):
            value = data[k]
            source = dense[indices[k]]
            for j in range(columns):
                accumulator[j] += value * source[j]
        for j in range(columns):
            out[row, j] = accumulator[j]


def _conv2d_patches(indptr, indices, data, bias, patches, out):
    """Sparse convolution as CSR weights (out_channels, in*kh*kw) times the im2col patch matrix
    (in*kh*kw, batch * positions), written straight into out (batch, out_channels, positions):

    for o in prange(out_channels):
        out[:, o, :] = bias[o]
        for k in range(indptr[o], indptr[o + 1]):   # the filter's surviving weights
            for n in range(batch):
                out[n, o, :] += data[k] * patches[indices[k], n*positions : (n+1)*positions]
    """
    batch, _, positions = out.shape
    for o in prange(out.shape[1]):
        for n in range(batch):
            for s in range(positions):
                out[n, o, s] = bias[o]
        for k in range(indptr[o], indptr[o + 1]):
            value = data[k]
            source = patches[indices[k]]
            for n in range(batch):
                start = n * positions
                for s in range(positions):
                    out[n, o, s] += value * source[start + s]


spmv_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_spmv)
spmm_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_spmm)
conv2d_patches_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_conv2d_patches)
