"""im2col / col2im for convolution as one matrix multiply, as raw-array Numba kernels.

Layout. An input batch ``x`` is (N, C, H, W). ``im2col`` writes one row per output position and one
column per weight tap::

    cols[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j] = x[n, c, oh*stride + i - pad, ow*stride + j - pad]

(zero where the index falls into the padding), so ``cols @ weight.reshape(O, -1).T`` is the
convolution, output position by output channel. ``col2im`` is its adjoint: it adds every column
entry back to the input pixel it was read from, which is the input gradient of the convolution.

Each kernel is plain Python jitted by assignment, so ``NUMBA_DISABLE_JIT=1`` runs the same code
unjitted. They run on one thread on purpose: the matrix multiplies around them use BLAS's threads,
and on a small machine a parallel Numba region next to BLAS's spinning workers waits on descheduled
threads (measured: several times slower). ``rows_to_nchw``/``nchw_to_rows`` move the multiply's
(N*OH*OW, O) layout to and from (N, O, OH, OW), adding the bias on the way. Callers validate
shapes first (``minprune.ops.conv``): the kernels do no bounds checking. ``im2col_reference`` and
``col2im_reference`` are the slow, obviously correct NumPy twins the tests compare against.
"""

import numpy as np
from numba import njit

__all__ = [
    "conv_output_size",
    "im2col",
    "col2im",
    "rows_to_nchw",
    "nchw_to_rows",
    "im2col_reference",
    "col2im_reference",
]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _im2col(x, kh, kw, stride, pad, cols):
    n_images, channels, height, width = x.shape
    out_h = (height + 2 * pad - kh) // stride + 1
    out_w = (width + 2 * pad - kw) // stride + 1
    for n in range(n_images):
        for oh in range(out_h):
            for ow in range(out_w):
                row = (n * out_h + oh) * out_w + ow
                for c in range(channels):
                    for i in range(kh):
                        h = oh * stride + i - pad
                        for j in range(kw):
                            w = ow * stride + j - pad
                            col = (c * kh + i) * kw + j
                            if 0 <= h < height and 0 <= w < width:
                                cols[row, col] = x[n, c, h, w]
                            else:
                                cols[row, col] = 0.0


def _col2im(cols, kh, kw, stride, pad, dx):
    n_images, channels, height, width = dx.shape
    out_h = (height + 2 * pad - kh) // stride + 1
    out_w = (width + 2 * pad - kw) // stride + 1
    for n in range(n_images):
        dx[n] = 0.0
        for oh in range(out_h):
            for ow in range(out_w):
                row = (n * out_h + oh) * out_w + ow
                for c in range(channels):
                    for i in range(kh):
                        h = oh * stride + i - pad
                        if h < 0 or h >= height:
                            continue
                        for j in range(kw):
                            w = ow * stride + j - pad
                            if 0 <= w < width:
                                dx[n, c, h, w] += cols[row, (c * kh + i) * kw + j]


def _im2col_unpadded(x, kh, kw, stride, cols):
    """The common case (no padding) without a bounds test in the inner loop."""
    n_images, channels, height, width = x.shape
    out_h = (height - kh) // stride + 1
    out_w = (width - kw) // stride + 1
    for n in range(n_images):
        for oh in range(out_h):
            for ow in range(out_w):
                row = (n * out_h + oh) * out_w + ow
                for c in range(channels):
                    for i in range(kh):
                        base = (c * kh + i) * kw
                        h = oh * stride + i
                        w0 = ow * stride
                        for j in range(kw):
                            cols[row, base + j] = x[n, c, h, w0 + j]


def _rows_to_nchw(rows, bias, out):
    n_images, channels, out_h, out_w = out.shape
    for n in range(n_images):
        for p in range(out_h * out_w):
            row = n * out_h * out_w + p
            for c in range(channels):
                out[n, c, p // out_w, p % out_w] = rows[row, c] + bias[c]


def _nchw_to_rows(grad, rows):
    n_images, channels, out_h, out_w = grad.shape
    for n in range(n_images):
        for c in range(channels):
            for p in range(out_h * out_w):
                rows[n * out_h * out_w + p, c] = grad[n, c, p // out_w, p % out_w]


_im2col_jit = njit(cache=True)(_im2col)
_im2col_unpadded_jit = njit(cache=True)(_im2col_unpadded)
_rows_to_nchw_jit = njit(cache=True)(_rows_to_nchw)
_nchw_to_rows_jit = njit(cache=True)(_nchw_to_rows)
_col2im_jit = njit(cache=True)(_col2im)


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """Patch matrix of ``x`` (N, C, H, W), shape (N*OH*OW, C*KH*KW); see the module docstring."""
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    cols = np.empty((n_images * out_h * out_w, channels * kh * kw), dtype=x.dtype)
    if pad == 0:
        _im2col_unpadded_jit(np.ascontiguousarray(x), kh, kw, stride, cols)
    else:
        _im2col_jit(np.ascontiguousarray(x), kh, kw, stride, pad, cols)
    return cols


def col2im(cols, input_shape, kh: int, kw: int, stride: int, pad: int):
    """Adjoint of :func:`im2col`: sum patch entries back into an array of ``input_shape``."""
    dx = np.empty(input_shape, dtype=cols.dtype)
    _col2im_jit(np.ascontiguousarray(cols), kh, kw, stride, pad, dx)
    return dx


def rows_to_nchw(rows, bias, shape):
    """(N*OH*OW, O) rows plus ``bias`` (O,) -> a new (N, O, OH, OW) array of ``shape``."""
    out = np.empty(shape, dtype=rows.dtype)
    if bias is None:
        bias = np.zeros(shape[1], dtype=rows.dtype)
    _rows_to_nchw_jit(np.ascontiguousarray(rows), bias, out)
    return out


def nchw_to_rows(grad):
    """(N, O, OH, OW) -> a new (N*OH*OW, O) array: the inverse layout move of rows_to_nchw."""
    n_images, channels, out_h, out_w = grad.shape
    rows = np.empty((n_images * out_h * out_w, channels), dtype=grad.dtype)
    _nchw_to_rows_jit(np.ascontiguousarray(grad), rows)
    return rows


def im2col_reference(x, kh, kw, stride, pad):
    """NumPy twin of :func:`im2col` built from ``sliding_window_view``."""
    n_images, channels = x.shape[:2]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, OH, OW, KH, KW)
    out_h, out_w = windows.shape[2:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n_images * out_h * out_w, -1).copy()


def col2im_reference(cols, input_shape, kh, kw, stride, pad):
    """NumPy twin of :func:`col2im`: loop over taps, add each into a padded buffer."""
    n_images, channels, height, width = input_shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    patches = cols.reshape(n_images, out_h, out_w, channels, kh, kw)
    padded = np.zeros((n_images, channels, height + 2 * pad, width + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * out_h, stride)
            columns = slice(j, j + stride * out_w, stride)
            padded[:, :, rows, columns] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, pad : pad + height, pad : pad + width]
