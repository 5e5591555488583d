"""Max-pooling forward and backward as raw-array Numba kernels, with NumPy twins; the training
op (`minprune.autograd.ops.conv`) and the sparse engine both run `max_pool_forward`.

Forward writes, for every (n, c, oh, ow), the window's maximum and the flat index ``h * W + w`` of
the input pixel that held it (the first one on ties, scanning rows then columns, as Caffe does).
Backward sends each output gradient to that pixel; overlapping windows (stride < kernel) add up.
One thread, plane by plane. No padding: the LeNets use none. Callers validate shapes first.
"""

import functools

import numpy as np
from numba import njit

from minprune.kernels.training.im2col import conv_output_size

__all__ = [
    "max_pool_forward",
    "max_pool_backward",
    "max_pool_forward_reference",
    "max_pool_backward_reference",
]


@functools.cache
def _forward_kernel(kernel, stride):
    """The forward compiled for one window size and stride, both constants in the code: LLVM
    unrolls the window loops (faster than with sizes known only at run time)."""

    def forward(x, out, argmax):
        n_images, channels, height, width = x.shape
        out_h, out_w = out.shape[2], out.shape[3]
        for n in range(n_images):
            for c in range(channels):
                for oh in range(out_h):
                    for ow in range(out_w):
                        h0 = oh * stride
                        w0 = ow * stride
                        best = x[n, c, h0, w0]
                        best_index = h0 * width + w0
                        for i in range(kernel):
                            for j in range(kernel):
                                value = x[n, c, h0 + i, w0 + j]
                                if value > best:
                                    best = value
                                    best_index = (h0 + i) * width + w0 + j
                        out[n, c, oh, ow] = best
                        argmax[n, c, oh, ow] = best_index

    return njit(cache=True)(forward)


@njit(cache=True)
def _backward_jit(grad, argmax, dx):
    """Clear dx, then add each output gradient at its argmax; flat planes (argmax is already a
    flat index into its plane), which runs faster than the same loop over 4-D indices."""
    planes = dx.shape[0] * dx.shape[1]
    plane_size = dx.shape[2] * dx.shape[3]
    window_count = grad.shape[2] * grad.shape[3]
    flat_grad, flat_argmax, flat_dx = grad.reshape(-1), argmax.reshape(-1), dx.reshape(-1)
    flat_dx[:] = 0.0
    for plane in range(planes):
        for k in range(plane * window_count, (plane + 1) * window_count):
            flat_dx[plane * plane_size + flat_argmax[k]] += flat_grad[k]


def max_pool_forward(x, kernel: int, stride: int):
    """Return ``(out, argmax)`` for ``x`` (N, C, H, W); argmax holds flat input indices (int32)."""
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kernel, stride, 0)
    out_w = conv_output_size(width, kernel, stride, 0)
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((n_images, channels, out_h, out_w), dtype=np.int32)
    _forward_kernel(kernel, stride)(np.ascontiguousarray(x), out, argmax)
    return out, argmax


def max_pool_backward(grad, argmax, input_shape):
    """Gradient of max-pooling with respect to its input, of shape ``input_shape``."""
    dx = np.empty(input_shape, dtype=grad.dtype)
    _backward_jit(np.ascontiguousarray(grad), np.ascontiguousarray(argmax), dx)
    return dx


def max_pool_forward_reference(x, kernel, stride):
    """NumPy twin of :func:`max_pool_forward` built from ``sliding_window_view``."""
    width = x.shape[3]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    flat = windows.reshape(windows.shape[:4] + (kernel * kernel,))
    out = flat.max(axis=-1)
    tap = flat.argmax(axis=-1)  # first maximum, row-major within the window
    out_h, out_w = out.shape[2:]
    rows = np.arange(out_h)[:, None] * stride + tap // kernel
    columns = np.arange(out_w)[None, :] * stride + tap % kernel
    return out, (rows * width + columns).astype(np.int32)


def max_pool_backward_reference(grad, argmax, input_shape):
    """NumPy twin of :func:`max_pool_backward` using ``np.add.at``."""
    n_images, channels, height, width = input_shape
    dx = np.zeros((n_images, channels, height * width), dtype=grad.dtype)
    planes = np.arange(n_images * channels)
    flat_dx = dx.reshape(n_images * channels, height * width)
    np.add.at(
        flat_dx,
        (np.repeat(planes, grad[0, 0].size), argmax.reshape(-1)),
        grad.reshape(-1),
    )
    return dx.reshape(input_shape)
