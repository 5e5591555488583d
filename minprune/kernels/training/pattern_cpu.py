"""Numba CPU kernels for TRAINING a pruned fully connected layer on its sparsity pattern.

While a pruned network is retrained (Han et al. 2015, Sec. 3) its mask does not change, so the
three matrix products of a Linear layer need only the kept connections:

    forward         Y  = X @ (W * M).T + b         -> `spmm_to_columns` with the CSR of M
    input gradient  dX = dY @ (W * M)              -> `spmm_to_columns` with the CSR of M.T
    weight gradient dW = (dY.T @ X) * M            -> `sampled_dots`: one dot per kept weight

Activations are passed transposed, (features, batch), so inner loops run over the batch through
contiguous memory. Jitted by assignment (``NUMBA_DISABLE_JIT=1`` runs them as Python); no checks
here (`minprune.kernels.training.pattern` validates). Serial, like every training-path kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["spmm_to_columns_cpu", "sampled_dots_cpu"]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: lets LLVM split sums over SIMD lanes


def _spmm_to_columns(pointers, indices, values, dense_t, bias, out):
    """out (batch, rows): out[:, r] = bias[r] + sum_{k in row r} values[k] * dense_t[indices[k], :]
    for a CSR matrix (rows, cols) and dense_t (cols, batch) -- i.e. out = (A @ dense_t).T + bias.
    Row r is accumulated in a contiguous buffer over the batch, then written as out's column r."""
    batch = out.shape[0]
    accumulator = np.empty(batch, dtype=np.float32)
    for row in range(out.shape[1]):
        for n in range(batch):
            accumulator[n] = bias[row]
        for k in range(pointers[row], pointers[row + 1]):
            value = values[k]
            activation = dense_t[indices[k]]
            for n in range(batch):
                accumulator[n] += value * activation[n]
        for n in range(batch):
            out[n, row] = accumulator[n]


def _sampled_dots(pointers, indices, left_t, right_t, out):
    """out[k] = dot(left_t[r], right_t[indices[k]]) for every stored entry k = (r, indices[k]) of
    a CSR pattern: the entries of left_t @ right_t.T at the pattern only (an SDDMM)."""
    for row in range(pointers.shape[0] - 1):
        left = left_t[row]
        for k in range(pointers[row], pointers[row + 1]):
            right = right_t[indices[k]]
            total = np.float32(0.0)
            for n in range(left.shape[0]):
                total += left[n] * right[n]
            out[k] = total


spmm_to_columns_cpu = njit(cache=True, fastmath=_FASTMATH)(_spmm_to_columns)
sampled_dots_cpu = njit(cache=True, fastmath=_FASTMATH)(_sampled_dots)
