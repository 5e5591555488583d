"""The convolution and pooling loops written once for any array module: the GPU path.

The Numba kernels of `im2col` and `pool` run on NumPy arrays only. For CuPy arrays the ops
(`minprune.autograd.ops.conv`) call these instead: the same contracts, written with whole-array
slicing of the array module ``xp`` passed in (numpy or cupy), so no custom GPU kernel is needed.
Each loops over the KH x KW kernel taps in Python and moves one strided slice of every window per
tap
-- 121 slices for AlexNet's 11 x 11 conv1, 9 for its 3 x 3 pools -- so the work is a few large
array operations, not a loop per pixel.

Tested on the CPU with ``xp=numpy`` against the Numba kernels and the NumPy references
(tests/kernels/test_generic.py); on a GPU only through ``pytest -m cuda``. Taking ``xp`` as an
argument keeps `minprune.kernels` a leaf (it never asks the array seam itself).
"""

from minprune.kernels.training.im2col import conv_output_size

__all__ = [
    "im2col",
    "col2im",
    "rows_to_nchw",
    "nchw_to_rows",
    "max_pool_forward",
    "max_pool_backward",
]


def _window_slices(tap_row, tap_column, stride, out_h, out_w):
    """The (rows, columns) slices that pick tap (tap_row, tap_column) of every window: element
    (oh, ow) is input pixel (oh * stride + tap_row, ow * stride + tap_column)."""
    rows = slice(tap_row, tap_row + stride * (out_h - 1) + 1, stride)
    columns = slice(tap_column, tap_column + stride * (out_w - 1) + 1, stride)
    return rows, columns


def im2col(xp, x, kh: int, kw: int, stride: int, pad: int):
    """`im2col.im2col` for any array module: (N*OH*OW, C*KH*KW) patches of ``x`` (N, C, H, W),
    ``cols[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j] = padded x[n, c, oh*stride + i, ow*stride + j]``.
    """
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    padded = x
    if pad:
        padded = xp.zeros((n_images, channels, height + 2 * pad, width + 2 * pad), dtype=x.dtype)
        padded[:, :, pad : pad + height, pad : pad + width] = x
    cols = xp.empty((n_images, out_h, out_w, channels, kh, kw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, stride, out_h, out_w)
            cols[:, :, :, :, i, j] = padded[:, :, rows, columns].transpose(0, 2, 3, 1)
    return cols.reshape(n_images * out_h * out_w, channels * kh * kw)


def col2im(xp, cols, input_shape, kh: int, kw: int, stride: int, pad: int):
    """`im2col.col2im` for any array module: the adjoint of `im2col`, summing every patch entry
    back onto the input pixel it came from. Within one tap the windows touch distinct pixels, so
    each tap is one strided ``+=`` (no scatter, no atomics)."""
    n_images, channels, height, width = input_shape
    out_h = conv_output_size(height, kh, stride, pad)
    out_w = conv_output_size(width, kw, stride, pad)
    patches = cols.reshape(n_images, out_h, out_w, channels, kh, kw)
    padded = xp.zeros((n_images, channels, height + 2 * pad, width + 2 * pad), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(i, j, stride, out_h, out_w)
            padded[:, :, rows, columns] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(padded[:, :, pad : pad + height, pad : pad + width])


def rows_to_nchw(xp, rows, bias, shape):
    """`im2col.rows_to_nchw` for any array module: (N*OH*OW, O) rows plus ``bias`` (O,) or None
    -> a new (N, O, OH, OW) array."""
    n_images, channels, out_h, out_w = shape
    if bias is not None:
        rows = rows + bias
    return xp.ascontiguousarray(
        rows.reshape(n_images, out_h * out_w, channels).transpose(0, 2, 1).reshape(shape)
    )


def nchw_to_rows(xp, grad):
    """`im2col.nchw_to_rows` for any array module: (N, O, OH, OW) -> a new (N*OH*OW, O) array."""
    return xp.ascontiguousarray(grad.transpose(0, 2, 3, 1).reshape(-1, grad.shape[1]))


def max_pool_forward(xp, x, kernel: int, stride: int):
    """`pool.max_pool_forward` for any array module: ``(out, argmax)``, argmax the flat input index
    ``h * W + w`` (int32) of each window's maximum, the first one on ties in row-major order.

    A running maximum over the taps, as the Numba kernel scans each window: a later tap replaces
    the best only when strictly greater, so ties (and NaN) resolve the same way.
    """
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kernel, stride, 0)
    out_w = conv_output_size(width, kernel, stride, 0)
    rows, columns = _window_slices(0, 0, stride, out_h, out_w)
    out = x[:, :, rows, columns].copy()
    best_tap = xp.zeros(out.shape, dtype=xp.int32)
    for tap in range(1, kernel * kernel):
        rows, columns = _window_slices(tap // kernel, tap % kernel, stride, out_h, out_w)
        candidate = x[:, :, rows, columns]
        better = candidate > out
        out = xp.where(better, candidate, out)
        best_tap = xp.where(better, tap, best_tap)
    window_row = xp.arange(out_h, dtype=xp.int32).reshape(out_h, 1) * stride
    window_column = xp.arange(out_w, dtype=xp.int32).reshape(1, out_w) * stride
    argmax = (window_row + best_tap // kernel) * width + window_column + best_tap % kernel
    return out, argmax.astype(xp.int32)


def max_pool_backward(xp, grad, argmax, input_shape, kernel: int, stride: int):
    """`pool.max_pool_backward` for any array module: each output gradient goes to the input pixel
    that held its window's maximum; overlapping windows (stride < kernel) add up. One strided
    ``+=`` per tap, as in `col2im` (``kernel`` and ``stride`` recover the tap from ``argmax``)."""
    width = input_shape[3]
    out_h, out_w = grad.shape[2], grad.shape[3]
    window_row = xp.arange(out_h, dtype=xp.int32).reshape(out_h, 1) * stride
    window_column = xp.arange(out_w, dtype=xp.int32).reshape(1, out_w) * stride
    best_tap = (argmax // width - window_row) * kernel + argmax % width - window_column
    dx = xp.zeros(input_shape, dtype=grad.dtype)
    for tap in range(kernel * kernel):
        rows, columns = _window_slices(tap // kernel, tap % kernel, stride, out_h, out_w)
        dx[:, :, rows, columns] += grad * (best_tap == tap)
    return dx
