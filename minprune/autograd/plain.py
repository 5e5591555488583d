"""The plain backend: each op's hot loop as a few lines of array code a reader can check.

This is the code a reader meets first (chapter 1): the convolution's patch moves, max-pooling,
the fully connected layer on a pruning pattern, and the optimiser's masked update, written with
whole-array operations of the arrays' own module (NumPy, or CuPy on a GPU: a model there always
runs these). `minprune.autograd.fast` has the same functions on the Numba kernels;
`minprune.autograd.backend.ops_for` picks one (``mp.set_backend("plain" | "fast")``), and
tests/test_backends.py trains both ways and finds the same numbers (float32 summation order
aside).

The conv and pool loops walk the KH x KW kernel taps in Python and move one strided slice of
every window per tap -- 121 slices for AlexNet's 11 x 11 conv1, 9 for its 3 x 3 pools -- so the
work is a few large array operations, not a loop per pixel. Departure: no per-image layout for
the convolution (the fast backend's `fast.per_image_layout`); here it is always one GEMM for the
batch.
"""

from minprune.base.arrays import array_module
from minprune.kernels.training.im2col import conv_output_size

__all__ = [
    "im2col",
    "col2im",
    "rows_to_nchw",
    "nchw_to_rows",
    "per_image_layout",
    "max_pool_forward",
    "max_pool_backward",
    "pattern_linear",
    "masked_dense_forward",
    "masked_dense_backward",
    "masked_sgd_update",
]


def _window_slices(tap_row, tap_column, stride, out_h, out_w):
    """The (rows, columns) slices that pick tap (tap_row, tap_column) of every window: element
    (oh, ow) is input pixel (oh * stride + tap_row, ow * stride + tap_column)."""
    rows = slice(tap_row, tap_row + stride * (out_h - 1) + 1, stride)
    columns = slice(tap_column, tap_column + stride * (out_w - 1) + 1, stride)
    return rows, columns


def im2col(x, kh: int, kw: int, stride: int, pad: int):
    """The patch matrix (N*OH*OW, C*KH*KW) patches of ``x`` (N, C, H, W),
    ``cols[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j] = padded x[n, c, oh*stride + i, ow*stride + j]``.
    """
    xp = array_module(x)
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


def col2im(cols, input_shape, kh: int, kw: int, stride: int, pad: int):
    """The adjoint of `im2col`, summing every patch entry
    back onto the input pixel it came from. Within one tap the windows touch distinct pixels, so
    each tap is one strided ``+=`` (no scatter, no atomics)."""
    xp = array_module(cols)
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


def per_image_layout(positions: int, taps: int, groups: int) -> bool:
    """Whether a convolution lays its patches out image by image: never here (one GEMM for the
    batch, the layout a reader meets in chapter 1)."""
    return False


def rows_to_nchw(rows, bias, shape):
    """(N*OH*OW, O) rows plus ``bias`` (O,) or None
    -> a new (N, O, OH, OW) array."""
    n_images, channels, out_h, out_w = shape
    if bias is not None:
        rows = rows + bias
    return array_module(rows).ascontiguousarray(
        rows.reshape(n_images, out_h * out_w, channels).transpose(0, 2, 1).reshape(shape)
    )


def nchw_to_rows(grad):
    """(N, O, OH, OW) -> a new (N*OH*OW, O) array: the layout move before the backward GEMMs."""
    rows = grad.transpose(0, 2, 3, 1).reshape(-1, grad.shape[1])
    return array_module(grad).ascontiguousarray(rows)


def max_pool_forward(x, kernel: int, stride: int):
    """Max-pooling: ``(out, argmax)``, argmax the flat input index
    ``h * W + w`` (int32) of each window's maximum, the first one on ties in row-major order.

    A running maximum over the taps, as the Numba kernel scans each window: a later tap replaces
    the best only when strictly greater, so ties (and NaN) resolve the same way.
    """
    xp = array_module(x)
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


def max_pool_backward(grad, argmax, input_shape, kernel: int, stride: int):
    """Each output gradient goes to the input pixel
    that held its window's maximum; overlapping windows (stride < kernel) add up. One strided
    ``+=`` per tap, as in `col2im` (``kernel`` and ``stride`` recover the tap from ``argmax``)."""
    xp = array_module(grad)
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


# -- the fully connected layer on a pruning pattern (minprune.autograd.ops.pattern_linear) -------


def masked_dense_forward(x, weight, bias, mask):
    """``x @ (weight * mask).T + bias`` as one dense product, in the inputs' dtype."""
    out = x @ (weight * mask).T
    return out if bias is None else out + bias


def masked_dense_backward(x, weight, mask, grad):
    """(grad_x, grad_weight, grad_bias) of `masked_dense_forward`; grad_weight is zero where the
    mask prunes, as the fast backend's sparse kernels leave it."""
    ones = array_module(grad).ones(grad.shape[0], dtype=grad.dtype)
    return grad @ (weight * mask), (grad.T @ x) * mask, ones @ grad


def pattern_linear(x, weight, bias, mask, patterns=None):
    """The retraining layer (Sec. 3: the survivors retrain on a fixed mask) is here simply the
    masked dense product. Returns ``(y, backward)``; ``backward(grad, need_x, need_weight)``
    gives (grad_x, grad_weight, grad_bias). ``patterns`` (the fast backend's index cache) is not
    needed."""

    def backward(grad, need_x=True, need_weight=True):
        return masked_dense_backward(x, weight, mask, grad)

    return masked_dense_forward(x, weight, bias, mask), backward


# -- the optimiser's update (minprune.training.optim.SGD) ----------------------------------------


def masked_sgd_update(weight, velocity, grad, mask, *, lr, momentum, weight_decay=0.0, l1=0.0):
    """One SGD-momentum step, in place (PyTorch's form of momentum; Han et al. 2015 Sec. 3.1
    compare L2 and L1)::

        g = grad + weight_decay * w + l1 * sign(w);  v = momentum * v + g;  w -= lr * v
        w, v *= mask          (pruned connections stay dead, Sec. 3; ``mask`` None: no mask)
    """
    if weight_decay:
        grad = grad + weight_decay * weight
    if l1:
        grad = grad + l1 * array_module(weight).sign(weight)
    velocity *= momentum
    velocity += grad
    weight -= lr * velocity
    if mask is not None:
        weight *= mask
        velocity *= mask
