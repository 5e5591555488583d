"""Numba CUDA kernels for fully connected layers held in the paper's 8-bit relative-index layout
(`minprune.sparse.relative`; the CPU twins are `relative_cpu` and `fc_chain_cpu`): by row, one
thread per (output, sample) walks its row's steps (a gather); by column, one thread per (input,
sample) skips a zero input -- EIE's zero skipping -- and scatters its column with atomic adds
into the output, which `bias_rows_kernel` first fills with the bias. Importable without a GPU;
tested under ``NUMBA_ENABLE_CUDASIM=1``; launched by `minprune.inference.products_cuda`.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

__all__ = ["bias_rows_kernel", "by_row_kernel", "by_column_kernel"]


@cuda.jit
def bias_rows_kernel(bias, out):
    """out[n, row] = bias[row]; one thread per element."""
    row, n = cuda.grid(2)
    if n < out.shape[0] and row < out.shape[1]:
        out[n, row] = bias[row]


@cuda.jit
def by_row_kernel(pointers, steps, values, bias, x, out):
    """out[n, row] = bias[row] + sum over row's entries k of values[k] * x[n, position], the
    position decoded from the steps; one thread per (row, n)."""
    row, n = cuda.grid(2)
    if n < out.shape[0] and row < out.shape[1]:
        total = bias[row]
        following = np.uint32(0)
        for k in range(pointers[row], pointers[row + 1]):
            column = following + steps[k]
            total += values[k] * x[n, column]
            following = column + np.uint32(1)
        out[n, row] = total


@cuda.jit
def by_column_kernel(pointers, steps, values, x, out):
    """out[n, row] += x[n, j] * values[k] for each entry k of column j, skipped when x[n, j] is
    0; one thread per (j, n), atomic adds (threads of different columns share output rows)."""
    j, n = cuda.grid(2)
    if n < x.shape[0] and j < x.shape[1]:
        activation = x[n, j]
        if activation != 0.0:
            following = np.uint32(0)
            for k in range(pointers[j], pointers[j + 1]):
                row = following + steps[k]
                cuda.atomic.add(out, (n, row), activation * values[k])
                following = row + np.uint32(1)
