"""Numba CPU kernels for CSR weights: SpMV, SpMM, im2col and sparse conv2d over patches.

Each kernel is a plain Python function over raw arrays, jitted by assignment (minitorch style), so
that ``NUMBA_DISABLE_JIT=1`` runs the very same code as Python for tests and tracebacks:

    spmv_cpu = njit(parallel=True, cache=True, fastmath=...)(_spmv)

The kernels do NO checking: they trust their caller (`minprune.kernels.csr_ops`) to pass a
validated `CSRMatrix`'s arrays and output arrays of the right shape. ``prange`` runs only over the
independent output rows, so no two threads ever write the same element.

Tuning choices (measured in benchmarks/sparse_spmv.py, AlexNet fc6 4096 x 9216 at 9%):

- *Unsigned index views.* Numba supports Python's negative indexing, so for a signed index it emits
  a wrap-around test on every access; in the SpMV inner loop that blocked vectorisation. The
  wrappers therefore pass ``indptr.view(np.uint64)`` and ``indices.view(np.uint32)`` -- zero-copy,
  and exact because `CSRMatrix` has already validated that every value is >= 0.
- *float32 accumulation with ``fastmath={"reassoc", "contract"}``.* Reassociation lets LLVM split a
  row's sum over SIMD lanes (8 partial sums, then a tree), which is both faster and *more* accurate
  than one sequential float32 sum; float64 accumulation was ~10% slower for no benefit a float32
  network can use. We do not enable the other fast-math flags (``nnan``, ``ninf``), so NaN and
  infinity still propagate as they should. Together with the unsigned views: ~3.4 -> ~2.0 ms on
  one thread; either change alone gained under 15%.
- *Layout for batches.* SpMM computes ``out (rows, n) = A @ dense (cols, n)``: for a Linear layer
  that is Y^T = W X^T, so the innermost loop runs over the n batch columns of one row of X^T,
  contiguous in memory, and vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["spmv_cpu", "spmm_cpu", "im2col_cpu", "conv2d_patches_cpu", "unsigned_index_views"]

_FASTMATH = {"reassoc", "contract"}


def unsigned_index_views(csr) -> tuple[np.ndarray, np.ndarray]:
    """(indptr as uint64, indices as uint32): zero-copy views of a validated `CSRMatrix`'s
    non-negative index arrays, which spare Numba its negative-index wrap-around tests."""
    return csr.indptr.view(np.uint64), csr.indices.view(np.uint32)


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


def _im2col(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, patches):
    """Unfold images (batch, channels, height, width) into patches (channels*kh*kw, batch*oh*ow):

    patches[(c*kh + ky)*kw + kx, (n*oh + oy)*ow + ox]
        = images[n, c, oy*sh - ph + ky, ox*sw - pw + kx]    (0 where that falls in the padding)

    One patch row per prange iteration.
    """
    batch, channels, height, width = images.shape
    out_h = (height + 2 * pad_h - kernel_h) // stride_h + 1
    out_w = (width + 2 * pad_w - kernel_w) // stride_w + 1
    for row in prange(channels * kernel_h * kernel_w):
        c = row // (kernel_h * kernel_w)
        ky = (row // kernel_w) % kernel_h
        kx = row % kernel_w
        for n in range(batch):
            for oy in range(out_h):
                iy = oy * stride_h - pad_h + ky
                start = (n * out_h + oy) * out_w
                for ox in range(out_w):
                    ix = ox * stride_w - pad_w + kx
                    if 0 <= iy < height and 0 <= ix < width:
                        patches[row, start + ox] = images[n, c, iy, ix]
                    else:
                        patches[row, start + ox] = 0.0


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
im2col_cpu = njit(parallel=True, cache=True)(_im2col)
conv2d_patches_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_conv2d_patches)
