"""Numba CPU kernels for CSR weights: SpMV, SpMM and sparse conv2d over im2col patches.

Plain Python functions jitted by assignment, so ``NUMBA_DISABLE_JIT=1`` runs the same code as
Python. No checking here: `minprune.inference.products` passes a validated `CSRMatrix`'s arrays.
``prange`` runs only over independent output rows, so no two threads write the same element.
Two tuning choices (benchmarks/sparse_spmv.py): unsigned index views (`unsigned_index_views`)
spare Numba a negative-index test per access, and ``fastmath={"reassoc", "contract"}`` lets LLVM
split a row's float32 sum over SIMD lanes (NaN and infinity still propagate). These are the int32
CSR products (`minprune.inference.products`, the per-layer engine's Linear stage); the engine's
own kernels read the paper's 8-bit steps (`relative_cpu`, `fc_chain_cpu`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "spmv_cpu", "spmm_cpu", "conv2d_patches_cpu", "conv2d_images_cpu", "conv2d_images_serial",
    "unsigned_index_views", "image_patches",
]

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
            row = patches[indices[k]]
            for n in range(batch):
                # Slice first, then index by the loop counter alone: an index Numba cannot prove
                # non-negative (start + s) gets a wrap-around test that stops LLVM vectorising.
                source = row[n * positions : (n + 1) * positions]
                target = out[n, o]
                for s in range(positions):
                    target[s] += value * source[s]


def _image_patches(image, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h, out_w,
                   patches):
    """One image's patch matrix (channels * kh * kw, out_h * out_w) written into ``patches``,
    the layout of `minprune.kernels.training.im2col.im2col_reference`: row (c, ky, kx), column
    (oh, ow) holds image[c, oh * stride_h - pad_h + ky, ow * stride_w - pad_w + kx], 0 outside.
    Shared by both image-by-image sparse convolutions (inlined into each)."""
    channels, height, width = image.shape
    for c in range(channels):
        plane = image[c]
        for ky in range(kernel_h):
            for kx in range(kernel_w):
                row = patches[(c * kernel_h + ky) * kernel_w + kx]
                for oh in range(out_h):
                    iy = oh * stride_h - pad_h + ky
                    line = row[oh * out_w : (oh + 1) * out_w]
                    if iy < 0 or iy >= height:
                        for ow in range(out_w):
                            line[ow] = 0.0
                        continue
                    source = plane[iy]
                    if stride_w == 1 and pad_w == 0:  # a contiguous run: copy it
                        window = source[kx : kx + out_w]
                        for ow in range(out_w):
                            line[ow] = window[ow]
                        continue
                    for ow in range(out_w):
                        ix = ow * stride_w - pad_w + kx
                        line[ow] = source[ix] if 0 <= ix < width else 0.0


image_patches = njit(inline="always")(_image_patches)


def _conv2d_images(indptr, indices, data, bias, images, kernel_h, kernel_w, stride_h, stride_w,
                   pad_h, pad_w, out):
    """The same sparse convolution image by image, the patches built inside (no patch matrix for
    the batch): per image, its patch matrix (in*kh*kw, positions) goes to a scratch array that
    stays in cache while every filter reads it, then

    for o in range(out_channels):
        out[n, o, :] = bias[o] + sum over k of data[k] * patches[indices[k], :]   (4 rows a pass)

    ``prange`` over images; out is (batch, out_channels, out_h, out_w). Loops index slices by the
    loop counter alone (see `_conv2d_patches`). `products.conv2d_forward_csr` runs it; the engine's
    twin reads 8-bit steps instead (`relative_cpu.conv2d_images`).
    """
    batch, channels, height, width = images.shape
    out_channels = out.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    positions = out_h * out_w
    for n in prange(batch):
        patches = np.empty((channels * kernel_h * kernel_w, positions), dtype=np.float32)
        image_patches(images[n], kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, out_h,
                      out_w, patches)
        for o in range(out_channels):
            target = out[n, o].reshape(positions)
            for s in range(positions):
                target[s] = bias[o]
            k, end = np.int64(indptr[o]), np.int64(indptr[o + 1])
            while k + 4 <= end:
                w0, w1, w2, w3 = data[k], data[k + 1], data[k + 2], data[k + 3]
                r0, r1 = patches[indices[k]], patches[indices[k + 1]]
                r2, r3 = patches[indices[k + 2]], patches[indices[k + 3]]
                for s in range(positions):
                    target[s] += w0 * r0[s] + w1 * r1[s] + w2 * r2[s] + w3 * r3[s]
                k += 4
            while k < end:
                w0, r0 = data[k], patches[indices[k]]
                for s in range(positions):
                    target[s] += w0 * r0[s]
                k += 1


spmv_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_spmv)
spmm_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_spmm)
conv2d_patches_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_conv2d_patches)
conv2d_images_cpu = njit(parallel=True, cache=True, fastmath=_FASTMATH)(_conv2d_images)
# One image has nothing to share out: the serial build spares the parallel region's start-up.
conv2d_images_serial = njit(cache=True, fastmath=_FASTMATH)(_conv2d_images)
