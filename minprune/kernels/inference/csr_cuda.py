"""Numba CUDA kernels for CSR weights: SpMV, SpMM, a transpose, im2col patches and sparse conv2d.

The GPU twins of `csr_cpu` and `im2col.im2col_patches_cpu` (same contracts, same references);
`minprune.inference.products_cuda` validates and launches them. Importable without a GPU; tested
under ``NUMBA_ENABLE_CUDASIM=1``. Designs (Bell & Garland, SC 2009): SpMV is "vector CSR", one
32-thread warp per row with a shared-memory tree sum (rows of AlexNet's fc6 at 9% hold ~830
entries); SpMM and sparse conv use one thread per output element.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import cuda

__all__ = [
    "LANES",
    "ROWS_PER_BLOCK",
    "spmv_kernel",
    "spmm_kernel",
    "transpose_kernel",
    "im2col_kernel",
    "conv2d_patches_kernel",
]

LANES = 32  # threads cooperating on one row in SpMV (one warp)
ROWS_PER_BLOCK = 4  # SpMV rows per block of 32 x 4 threads


@cuda.jit
def spmv_kernel(indptr, indices, data, bias, x, out):
    """out[row] = bias[row] + sum_k data[k] * x[indices[k]]; block (32, 4): threadIdx.y picks
    the row, threadIdx.x the lane."""
    partial = cuda.shared.array((ROWS_PER_BLOCK, LANES), numba.float32)
    lane = cuda.threadIdx.x
    slot = cuda.threadIdx.y
    row = cuda.blockIdx.x * ROWS_PER_BLOCK + slot
    total = np.float32(0.0)
    if row < out.shape[0]:
        for k in range(indptr[row] + lane, indptr[row + 1], LANES):
            total += data[k] * x[indices[k]]
    partial[slot, lane] = total
    cuda.syncthreads()
    width = LANES // 2
    while width > 0:  # tree reduction; every thread reaches every barrier
        if lane < width:
            partial[slot, lane] += partial[slot, lane + width]
        cuda.syncthreads()
        width //= 2
    if lane == 0 and row < out.shape[0]:
        out[row] = partial[slot, 0] + bias[row]


@cuda.jit
def spmm_kernel(indptr, indices, data, bias, dense, out):
    """out[row, j] = bias[row] + sum_k data[k] * dense[indices[k], j]; one thread per (row, j)."""
    j, row = cuda.grid(2)
    if row < out.shape[0] and j < out.shape[1]:
        total = bias[row]
        for k in range(indptr[row], indptr[row + 1]):
            total += data[k] * dense[indices[k], j]
        out[row, j] = total


@cuda.jit
def transpose_kernel(source, target):
    """target[j, i] = source[i, j]."""
    j, i = cuda.grid(2)
    if i < source.shape[0] and j < source.shape[1]:
        target[j, i] = source[i, j]


@cuda.jit
def im2col_kernel(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches):
    """Same layout as `im2col.im2col_patches_cpu`; one thread per patch-matrix element."""
    column, row = cuda.grid(2)
    if row >= patches.shape[0] or column >= patches.shape[1]:
        return
    height = images.shape[2]
    width = images.shape[3]
    out_h = (height + 2 * pad_h - kernel_h) // stride_h + 1
    out_w = (width + 2 * pad_w - kernel_w) // stride_w + 1
    c = row // (kernel_h * kernel_w)
    ky = (row // kernel_w) % kernel_h
    kx = row % kernel_w
    n = column // (out_h * out_w)
    oy = (column // out_w) % out_h
    ox = column % out_w
    iy = oy * stride_h - pad_h + ky
    ix = ox * stride_w - pad_w + kx
    if 0 <= iy < height and 0 <= ix < width:
        patches[row, column] = images[n, c, iy, ix]
    else:
        patches[row, column] = 0.0


@cuda.jit
def conv2d_patches_kernel(indptr, indices, data, bias, patches, out):
    """out[n, o, s] = bias[o] + sum_k W[o, k] * patches[k, n * positions + s]."""
    column, o = cuda.grid(2)
    positions = out.shape[2]
    if o < out.shape[1] and column < patches.shape[1]:
        total = bias[o]
        for k in range(indptr[o], indptr[o + 1]):
            total += data[k] * patches[indices[k], column]
        out[column // positions, o, column % positions] = total
