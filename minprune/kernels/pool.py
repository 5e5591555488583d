"""Max-pooling forward and backward as raw-array Numba kernels, with NumPy twins; the training
op (`minprune.ops.conv`) and the sparse engine both run `max_pool_forward`.

Forward writes, for every (n, c, oh, ow), the window's maximum and the flat index ``h * W + w`` of
the input pixel that held it (the first one on ties, scanning rows then columns, as Caffe does).
Backward sends each output gradient to that pixel; overlapping windows (stride < kernel) add up.
One thread, plane by plane. No padding: the LeNets use none. Callers validate shapes first.
"""

import functools

import numpy as np
from numba import njit

from minprune.kernels.im2col import conv_output_size

__all__ = [
    "max_pool_forward",
    "max_pool_backward",
    "max_pool_forward_reference",
    "max_pool_backward_reference",
]


@functools.cache
def _pool_kernels(kernel, stride):
    """(forward, backward) compiled for one window size and stride, both constants in the code:
    LLVM unrolls the window loops (LeNet's 2 x 2 pool forward 3-7x faster than with run-time
    sizes, batch 64)."""

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

    def backward(grad, argmax, dx):
        n_images, channels, height, width = dx.shape
        out_h, out_w = grad.shape[2], grad.shape[3]
        for n in range(n_images):
            for c in range(channels):
                if stride == kernel:  # windows tile the plane: write each pixel once
                    for h in range(out_h * kernel, height):
                        for w in range(width):
                            dx[n, c, h, w] = 0.0
                    for h in range(out_h * kernel):
                        for w in range(out_w * kernel, width):
                            dx[n, c, h, w] = 0.0
                    for oh in range(out_h):
                        for ow in range(out_w):
                            index = argmax[n, c, oh, ow]
                            for i in range(kernel):
                                for j in range(kernel):
                                    h = oh * kernel + i
                                    w = ow * kernel + j
                                    hit = h * width + w == index
                                    dx[n, c, h, w] = grad[n, c, oh, ow] if hit else 0.0
                else:  # overlapping (or gapped) windows: clear the plane, then add
                    for h in range(height):
                        for w in range(width):
                            dx[n, c, h, w] = 0.0
                    for oh in range(out_h):
                        for ow in range(out_w):
                            index = argmax[n, c, oh, ow]
                            h = index // width
                            dx[n, c, h, index - h * width] += grad[n, c, oh, ow]

    return njit(cache=True)(forward), njit(cache=True)(backward)


def max_pool_forward(x, kernel: int, stride: int):
    """Return ``(out, argmax)`` for ``x`` (N, C, H, W); argmax holds flat input indices (int32)."""
    n_images, channels, height, width = x.shape
    out_h = conv_output_size(height, kernel, stride, 0)
    out_w = conv_output_size(width, kernel, stride, 0)
    out = np.empty((n_images, channels, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((n_images, channels, out_h, out_w), dtype=np.int32)
    forward, _ = _pool_kernels(kernel, stride)
    forward(np.ascontiguousarray(x), out, argmax)
    return out, argmax


def max_pool_backward(grad, argmax, input_shape, kernel: int, stride: int):
    """Gradient of max-pooling with respect to its input, of shape ``input_shape``."""
    dx = np.empty(input_shape, dtype=grad.dtype)
    _, backward = _pool_kernels(kernel, stride)
    backward(np.ascontiguousarray(grad), argmax, dx)
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
