"""The fast backend: the functions of `minprune.autograd.plain`, same names and contracts, on the
Numba kernels of `minprune.kernels.training` (NumPy arrays on the CPU).

Where the two differ, it is only in speed and float32 summation order (tests/test_backends.py):

- the convolution may lay its patches out image by image (`per_image_layout`, one GEMM per
  image whose result is already NCHW) where plain always runs one GEMM for the batch;
- the fully connected layer on a pruning pattern (Sec. 3) computes only the kept connections
  (`minprune.kernels.training.pattern`) in float32; other dtypes run its float64 NumPy twin, so
  the op is gradient-checked through it;
- the masked SGD update is one fused pass over memory (`masked_sgd_update_for`): the Numba CPU
  kernel, or its Numba CUDA twin for a float32 model on the GPU.

`minprune.autograd.backend` chooses between this module and plain.py.
"""

from __future__ import annotations

import numpy as np

from minprune.base.arrays import array_module
from minprune.base.tuning import PER_IMAGE_MIN_POSITIONS_PER_TAP
from minprune.kernels.training import im2col as im2col_kernels
from minprune.kernels.training import pool as pool_kernels
from minprune.kernels.training.im2col import col2im, im2col, nchw_to_rows, rows_to_nchw
from minprune.kernels.training.masked_sgd import MaskedSGDStep
from minprune.kernels.training.pattern import (
    LinearPattern,
    sparse_linear_backward,
    sparse_linear_forward,
)
from minprune.kernels.training.pattern_reference import reference_backward, reference_forward

__all__ = [
    "im2col",
    "col2im",
    "rows_to_nchw",
    "nchw_to_rows",
    "per_image_layout",
    "conv2d_per_image",
    "max_pool_forward",
    "max_pool_backward",
    "pattern_linear",
    "masked_sgd_update_for",
]


# -- convolution ---------------------------------------------------------------------------------


def per_image_layout(positions: int, taps: int, groups: int) -> bool:
    """Whether a convolution lays its patches out image by image (`conv2d_per_image`): for
    ungrouped layers with at least as many output positions per image as taps per filter
    (LeNet-5's conv1: 576 positions, 25 taps; AlexNet's conv1: 3025, 363), where the per-image
    GEMMs are large enough for BLAS. Layers with many taps and few positions (LeNet-5's conv2: 64
    positions, 500 taps) keep one GEMM for the batch. Threshold: `minprune.base.tuning`."""
    return groups == 1 and positions >= PER_IMAGE_MIN_POSITIONS_PER_TAP * taps


def conv2d_per_image(x, weights, bias, kh: int, kw: int, stride: int, padding: int):
    """The convolution of ``x`` (N, C, H, W) with ``weights`` (O, C*KH*KW) as one GEMM per image
    (`im2col.im2col_images`): returns ``(out, backward)``, out (N, O, OH*OW), and
    ``backward(grad_planes, need_x, need_weight, need_bias)`` giving (grad_x, grad_weights
    (O, C*KH*KW), grad_bias), None where not needed."""
    x_shape = x.shape
    cols = im2col_kernels.im2col_images(x, kh, kw, stride, padding)  # (N, K, OH*OW)
    out = weights @ cols  # (N, O, OH*OW): already NCHW
    if bias is not None:
        out += bias[:, None]

    def backward(grad_planes, need_x, need_weight, need_bias):
        grad_x = grad_weights = grad_bias = None
        if need_x:
            grad_cols = weights.T @ grad_planes  # (N, K, OH*OW)
            grad_x = im2col_kernels.col2im_images(grad_cols, x_shape, kh, kw, stride, padding)
        if need_weight:
            grad_weights = (grad_planes @ cols.transpose(0, 2, 1)).sum(axis=0)  # (O, K)
        if need_bias:
            grad_bias = grad_planes.sum(axis=(0, 2))
        return grad_x, grad_weights, grad_bias

    return out, backward


# -- max-pooling ---------------------------------------------------------------------------------


def max_pool_forward(x, kernel: int, stride: int):
    """`plain.max_pool_forward` on the Numba kernel: ``(out, argmax)``."""
    return pool_kernels.max_pool_forward(x, kernel, stride)


def max_pool_backward(grad, argmax, input_shape, kernel: int, stride: int):
    """`plain.max_pool_backward` on the Numba kernel (which reads the pixel from ``argmax``
    alone: ``kernel`` and ``stride`` are not needed)."""
    return pool_kernels.max_pool_backward(grad, argmax, input_shape)


# -- the fully connected layer on a pruning pattern ----------------------------------------------


def pattern_linear(x, weight, bias, mask, patterns=None):
    """``y = x @ (weight * mask).T + bias`` on the kept connections only. Returns ``(y,
    backward)`` as `plain.pattern_linear` does. float32 runs the Numba kernels on the mask's
    `LinearPattern`, taken from ``patterns`` (the layer's `PatternCache`) or built for this call;
    other dtypes run the float64 NumPy twins."""
    float32 = x.dtype == weight.dtype == np.float32 and (bias is None or bias.dtype == np.float32)
    if not float32:

        def reference(grad, need_x=True, need_weight=True):
            return reference_backward(mask, x, weight, grad)

        return reference_forward(mask, x, weight, bias), reference

    pattern = LinearPattern(mask) if patterns is None else patterns.pattern_of(mask)
    y, saved = sparse_linear_forward(pattern, x, weight, bias)

    def backward(grad, need_x=True, need_weight=True):
        grad = grad.astype(np.float32, copy=False)
        return sparse_linear_backward(pattern, grad, saved, need_x, need_weight)

    return y, backward


# -- the optimiser's update ----------------------------------------------------------------------


def masked_sgd_update_for(weight):
    """The fused masked SGD update for one float32 ``weight`` (`plain.masked_sgd_update`'s
    contract): a `MaskedSGDStep` of its own on the CPU (it checks the arrays once, then only each
    new gradient), the Numba CUDA kernel on the GPU."""
    if array_module(weight) is np:
        checked_step = MaskedSGDStep()

        def update(weight, velocity, grad, mask, **hyper):
            checked_step(weight, velocity, np.ascontiguousarray(grad, dtype=np.float32), mask,
                         **hyper)

        return update
    # Imported on the first GPU step, so that training on the CPU never imports numba.cuda.
    from minprune.kernels.training.masked_sgd_cuda import masked_sgd_momentum_update_cuda

    def update_on_gpu(weight, velocity, grad, mask, **hyper):
        grad = array_module(grad).ascontiguousarray(grad, dtype=np.float32)
        masked_sgd_momentum_update_cuda(weight, velocity, grad, mask, **hyper)

    return update_on_gpu
