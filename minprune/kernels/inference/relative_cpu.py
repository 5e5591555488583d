"""Numba CPU kernels that read pruned weights as the paper stores them: 8-bit relative steps,
decoded inside the loop (layout: `minprune.sparse.relative`; Han et al. 2015, Sec. 5; fillers:
Deep Compression, Fig. 2). A line's entries are walked as

    position = -1
    for k in range(pointers[line], pointers[line + 1]):
        position += steps[k] + 1                  # a filler lands 256 on, with value 0.0
        ... values[k] at position ...

(in the code as ``position = following + steps[k]; following = position + 1`` on uint32, so
Numba indexes without testing for a negative index).

so a product reads 5 bytes per stored weight (a float32 value and a uint8 step) where int32 CSR
reads 8: the bytes a memory-bound product waits for. Fully connected layers are stored by column
(CSC, EIE's layout, Han et al., ISCA 2016): an input that is zero skips its whole column.

No checking here (raw arrays; `minprune.inference` passes validated `RelativeIndexMatrix`
arrays). The NumPy reference is `minprune.sparse.relative.RelativeIndexMatrix.to_csr` with the
CSR references (`csr_reference`). Jitted by assignment, so ``NUMBA_DISABLE_JIT=1`` runs them as
Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from minprune.kernels.inference.csr_cpu import image_patches

__all__ = [
    "csc_spmv", "csc_spmv_split", "csc_split_points", "csr_spmv", "gather_row", "scatter_column",
    "conv2d_wide", "conv2d_wide_parallel", "conv2d_wide_starts", "conv2d_images",
    "conv2d_images_parallel",
]

_FASTMATH = {"reassoc", "contract"}  # as in csr_cpu: a float32 sum may be split over SIMD lanes


def _gather_row(pointers, steps, values, source, row):
    """sum over row ``row``'s entries k of values[k] * source[column], the column decoded from
    the steps, in four running sums so the float adds overlap (the running column is a chain,
    which stops LLVM vectorising the row). Inlined where it is called."""
    k, end = np.int64(pointers[row]), np.int64(pointers[row + 1])
    following = np.uint32(0)
    t0 = t1 = t2 = t3 = np.float32(0.0)
    while k + 4 <= end:
        c0 = following + steps[k]
        c1 = c0 + np.uint32(1) + steps[k + 1]
        c2 = c1 + np.uint32(1) + steps[k + 2]
        c3 = c2 + np.uint32(1) + steps[k + 3]
        t0 += values[k] * source[c0]
        t1 += values[k + 1] * source[c1]
        t2 += values[k + 2] * source[c2]
        t3 += values[k + 3] * source[c3]
        following = c3 + np.uint32(1)
        k += 4
    while k < end:
        column = following + steps[k]
        t0 += values[k] * source[column]
        following = column + np.uint32(1)
        k += 1
    return (t0 + t1) + (t2 + t3)


def _scatter_column(pointers, steps, values, column, activation, target):
    """target[row] += activation * values[k] for each entry k of column ``column`` (stored by
    column), the row decoded from the steps. Inlined where it is called."""
    following = np.uint32(0)
    for k in range(pointers[column], pointers[column + 1]):
        row = following + steps[k]
        target[row] += activation * values[k]
        following = row + np.uint32(1)


def _csc_spmv(pointers, steps, values, bias, x, out):
    """out = W x + bias for W (rows, cols) stored by column, skipping every zero x[j] (EIE):

    out[:] = bias
    for j with x[j] != 0:
        row = -1
        for k in column j:  row += steps[k] + 1;  out[row] += x[j] * values[k]
    """
    for row in range(out.shape[0]):
        out[row] = bias[row]
    for j in range(x.shape[0]):
        if x[j] != 0.0:
            scatter_column(pointers, steps, values, j, x[j], out)


def csc_split_points(pointers, parts: int) -> np.ndarray:
    """``parts + 1`` column boundaries that split a CSC matrix into ``parts`` runs of columns
    holding about equal numbers of entries (`csc_spmv_split`'s work shares): each boundary is the
    column start nearest to its share of the entries."""
    starts = pointers.astype(np.int64)
    targets = np.linspace(0, int(starts[-1]), parts + 1)
    after = np.clip(np.searchsorted(starts, targets, side="left"), 1, starts.shape[0] - 1)
    nearer_before = targets - starts[after - 1] <= starts[after] - targets
    splits = np.where(nearer_before, after - 1, after).astype(np.int64)
    splits[0], splits[-1] = 0, starts.shape[0] - 1
    return np.maximum.accumulate(splits)


def _csc_spmv_split(pointers, steps, values, bias, x, splits, partials, out):
    """`_csc_spmv` with the columns split into ``len(splits) - 1`` runs (`csc_split_points`),
    one per thread, each scattering into its own row of ``partials`` (parts, rows) -- threads
    never write the same element -- then out = bias + the sum of the partials:

    for part in prange(parts):
        partials[part, :] = 0;  scatter columns splits[part] .. splits[part + 1] into it
    out[row] = bias[row] + sum over parts of partials[part, row]
    """
    parts, rows = partials.shape
    for part in prange(parts):
        partial = partials[part]
        for row in range(rows):
            partial[row] = 0.0
        for j in range(splits[part], splits[part + 1]):
            if x[j] != 0.0:
                scatter_column(pointers, steps, values, j, x[j], partial)
    for row in range(rows):
        total = bias[row]
        for part in range(parts):
            total += partials[part, row]
        out[row] = total


def _csr_spmv(pointers, steps, values, bias, x, out):
    """out = W x + bias for W stored by row (the file's layout): a gather per row, the steps
    decoded on the way, four running sums so the float adds overlap (the decoding's running
    position stops LLVM vectorising the row), rows shared out over threads (each writes its own):

    for row in prange(rows):
        column = -1;  total_0..3 = 0
        for k in row:  column += steps[k] + 1;  total_(k % 4) += values[k] * x[column]
        out[row] = total_0 + total_1 + total_2 + total_3 + bias[row]
    """
    for row in prange(out.shape[0]):
        out[row] = gather_row(pointers, steps, values, x, row) + bias[row]


def conv2d_wide_starts(channels, kernel_h, kernel_w, height, width) -> np.ndarray:
    """`conv2d_wide`'s table: for each tap position p = channel * kh * kw + ky * kw + kx of a
    filter, where its window starts in a flattened (C, H, W) image: channel * H * W + ky * W + kx
    (int64, C * kh * kw entries: a property of the layer's shape, not of its weights)."""
    channel, ky, kx = np.meshgrid(np.arange(channels), np.arange(kernel_h), np.arange(kernel_w),
                                  indexing="ij")
    return (channel * height * width + ky * width + kx).reshape(-1).astype(np.int64)


def _conv2d_wide(pointers, steps, values, bias, starts, images, out):
    """Sparse convolution, stride 1 and no padding, from the filters stored by row (a filter's
    taps, position = channel * kh * kw + ky * kw + kx) straight from the images, as
    `csr_cpu.conv2d_wide` but with each tap's position decoded from its step and its window's
    start read from ``starts`` (`conv2d_wide_starts`):

    for n in prange(batch):
        for o in range(out_channels):
            wide = bias[o]                               # (OH - 1) * W + OW values, row pitch W
            for each tap k of filter o (4 a pass):       # position decoded from steps[k]
                wide += values[k] * image_n.flat[starts[position] : starts[position] + span]
            out[n, o] = wide's valid columns
    """
    batch, channels, height, width = images.shape
    out_channels, out_h, out_w = out.shape[1], out.shape[2], out.shape[3]
    span = (out_h - 1) * width + out_w
    for n in prange(batch):
        flat = images[n].reshape(channels * height * width)
        wide = np.empty(span, dtype=np.float32)
        window = np.empty(4, dtype=np.int64)
        for o in range(out_channels):
            for s in range(span):
                wide[s] = bias[o]
            k, end = np.int64(pointers[o]), np.int64(pointers[o + 1])
            following = np.uint32(0)
            while k < end:
                count = min(4, end - k)
                for q in range(count):
                    position = following + steps[k + q]
                    window[q] = starts[position]
                    following = position + np.uint32(1)
                if count == 4:
                    w0, w1, w2, w3 = values[k], values[k + 1], values[k + 2], values[k + 3]
                    r0 = flat[window[0] : window[0] + span]
                    r1 = flat[window[1] : window[1] + span]
                    r2 = flat[window[2] : window[2] + span]
                    r3 = flat[window[3] : window[3] + span]
                    for s in range(span):
                        wide[s] += w0 * r0[s] + w1 * r1[s] + w2 * r2[s] + w3 * r3[s]
                else:
                    for q in range(count):
                        w0, r0 = values[k + q], flat[window[q] : window[q] + span]
                        for s in range(span):
                            wide[s] += w0 * r0[s]
                k += count
            plane = out[n, o]
            for oh in range(out_h):
                row = wide[oh * width : oh * width + out_w]
                target = plane[oh]
                for ow in range(out_w):
                    target[ow] = row[ow]


def _conv2d_images(pointers, steps, values, bias, images, kernel_h, kernel_w, stride_h,
                   stride_w, pad_h, pad_w, out):
    """Sparse convolution with any stride and padding, image by image: the image's patch matrix
    (in * kh * kw, positions) built in a scratch array that stays in cache, then for each filter
    (stored by row) out[n, o, :] = bias[o] + sum over its taps k of values[k] * patches[position],
    the position decoded from the steps (`csr_cpu.conv2d_images` with int32 columns)."""
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
            following = np.uint32(0)
            for k in range(pointers[o], pointers[o + 1]):
                position = following + steps[k]
                weight, source = values[k], patches[position]
                for s in range(positions):
                    target[s] += weight * source[s]
                following = position + np.uint32(1)


gather_row = njit(inline="always")(_gather_row)
scatter_column = njit(inline="always")(_scatter_column)
csc_spmv = njit(cache=True, fastmath=_FASTMATH)(_csc_spmv)
csc_spmv_split = njit(cache=True, parallel=True, fastmath=_FASTMATH)(_csc_spmv_split)
csr_spmv = njit(cache=True, parallel=True, fastmath=_FASTMATH)(_csr_spmv)
conv2d_wide = njit(cache=True, fastmath=_FASTMATH)(_conv2d_wide)
conv2d_wide_parallel = njit(cache=True, parallel=True, fastmath=_FASTMATH)(_conv2d_wide)
conv2d_images = njit(cache=True, fastmath=_FASTMATH)(_conv2d_images)
conv2d_images_parallel = njit(cache=True, parallel=True, fastmath=_FASTMATH)(_conv2d_images)
