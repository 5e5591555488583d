"""2-D convolution (im2col + one matrix multiply per group) and max-pooling, forward beside
backward.

Shapes follow PyTorch and Caffe: input (N, C, H, W), weight (O, C / groups, KH, KW), output
(N, O, OH, OW). The index-heavy loops (im2col, col2im, pooling, the layout moves) are Numba
kernels in ``minprune.kernels`` for NumPy arrays, and their array-module-generic twins
(`minprune.autograd.plain`, strided slices per kernel tap) for CuPy arrays on a GPU; the
multiplies are BLAS (or cuBLAS) through ``@``.

Grouped convolution (Caffe's ``group``; AlexNet's conv2, conv4 and conv5 use 2 groups, the two
halves that ran on two GPUs in Krizhevsky et al. 2012): the input channels and the filters are
split into ``groups`` equal blocks, and the filters of block g see only the channels of block g.
It is an ungrouped convolution whose (O, C * KH * KW) weight matrix is block-diagonal, so the op
builds the one patch matrix of the whole input as usual and multiplies each group's columns of it
by that group's filters: one GEMM per group, the zero blocks never stored or multiplied.
"""

import numpy

from minprune.autograd import plain as generic
from minprune.autograd.ops.linear import bias_gradient
from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module
from minprune.kernels.training import im2col as im2col_kernels
from minprune.kernels.training import pool as pool_kernels

__all__ = ["Conv2d", "MaxPool2d"]


def _group_blocks(groups, out_channels, taps):
    """Per group, (its filters: rows of the weight matrix, its taps: columns of the patch matrix).

    The weight matrix is (O, taps) with taps = C / groups * KH * KW; the patch matrix has
    ``groups * taps`` columns, channel-major, so group g's input channels are one contiguous block.
    """
    filters = out_channels // groups
    return [(slice(g * filters, (g + 1) * filters), slice(g * taps, (g + 1) * taps))
            for g in range(groups)]


def _runs_numba_kernels(xp) -> bool:
    """NumPy arrays run the Numba CPU kernels; any other module's (CuPy's) the generic twins."""
    return xp is numpy


def _im2col(x, kh, kw, stride, padding):
    xp = array_module(x)
    if _runs_numba_kernels(xp):
        return im2col_kernels.im2col(x, kh, kw, stride, padding)
    return generic.im2col(xp, x, kh, kw, stride, padding)


def _col2im(cols, x_shape, kh, kw, stride, padding):
    xp = array_module(cols)
    if _runs_numba_kernels(xp):
        return im2col_kernels.col2im(cols, x_shape, kh, kw, stride, padding)
    return generic.col2im(xp, cols, x_shape, kh, kw, stride, padding)


def _rows_to_nchw(rows, bias, shape):
    xp = array_module(rows)
    if _runs_numba_kernels(xp):
        return im2col_kernels.rows_to_nchw(rows, bias, shape)
    return generic.rows_to_nchw(xp, rows, bias, shape)


def _one_gemm_per_image(xp, positions, taps, groups) -> bool:
    """Whether to lay the patches out image by image (`im2col.im2col_images`): on the CPU, for
    ungrouped layers with at least as many output positions per image as taps per filter (LeNet-5's
    conv1: 576 positions, 25 taps; AlexNet's conv1: 3025, 363). There the per-image GEMMs are
    large enough for BLAS and their results are already NCHW, so the layout moves go: LeNet-5's
    conv1 forward and weight gradient took 3x less time (batch 64). Layers with many taps and few
    positions (LeNet-5's conv2: 64 positions, 500 taps) run faster as one GEMM for the batch."""
    return _runs_numba_kernels(xp) and groups == 1 and positions >= taps


def _nchw_to_rows(grad):
    xp = array_module(grad)
    if _runs_numba_kernels(xp):
        return im2col_kernels.nchw_to_rows(grad)
    return generic.nchw_to_rows(xp, grad)


class Conv2d(Function):
    """With ``mask`` (an array, not an input: no gradient) the op convolves with ``weight * mask``
    and masks the weight gradient: a pruned layer is one node, as in
    `minprune.autograd.ops.linear`."""

    def forward(self, x, weight, bias=None, stride=1, padding=0, groups=1, mask=None):
        if mask is not None:
            weight = weight * mask
        self.mask = mask
        n_images, _, height, width = x.shape
        out_channels, _, kh, kw = weight.shape
        out_h = im2col_kernels.conv_output_size(height, kh, stride, padding)
        out_w = im2col_kernels.conv_output_size(width, kw, stride, padding)
        self.x_shape, self.stride, self.padding, self.groups = x.shape, stride, padding, groups
        self.weight = weight
        weights = weight.reshape(out_channels, -1)  # (O, C/groups * KH * KW)
        self.per_image = _one_gemm_per_image(
            array_module(x), out_h * out_w, weights.shape[1], groups
        )
        if self.per_image:
            self.cols = im2col_kernels.im2col_images(x, kh, kw, stride, padding)  # (N, K, OH*OW)
            out = weights @ self.cols  # (N, O, OH*OW)
            if bias is not None:
                out += bias[:, None]
            return out.reshape(n_images, out_channels, out_h, out_w)
        self.cols = _im2col(x, kh, kw, stride, padding)  # (N*OH*OW, C*KH*KW)
        if groups == 1:
            rows = self.cols @ weights.T  # (N*OH*OW, O)
        else:
            rows = array_module(x).empty((self.cols.shape[0], out_channels), dtype=x.dtype)
            for filters, taps in _group_blocks(groups, out_channels, weights.shape[1]):
                rows[:, filters] = self.cols[:, taps] @ weights[filters].T
        return _rows_to_nchw(rows, bias, (n_images, out_channels, out_h, out_w))

    def backward(self, grad):
        if self.per_image:
            return self._backward_per_image(grad)
        out_channels, _, kh, kw = self.weight.shape
        weights = self.weight.reshape(out_channels, -1)
        blocks = _group_blocks(self.groups, out_channels, weights.shape[1])
        xp = array_module(grad)
        grad_rows = _nchw_to_rows(grad)  # (N*OH*OW, O)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            if self.groups == 1:
                grad_cols = grad_rows @ weights
            else:
                grad_cols = xp.empty(self.cols.shape, dtype=grad.dtype)
                for filters, taps in blocks:
                    grad_cols[:, taps] = grad_rows[:, filters] @ weights[filters]
            grad_x = _col2im(grad_cols, self.x_shape, kh, kw, self.stride, self.padding)
        if self.needs_input_grad[1]:
            if self.groups == 1:
                grad_weights = grad_rows.T @ self.cols
            else:
                grad_weights = xp.empty(weights.shape, dtype=grad.dtype)
                for filters, taps in blocks:
                    grad_weights[filters] = grad_rows[:, filters].T @ self.cols[:, taps]
            grad_weight = self._masked(grad_weights.reshape(self.weight.shape))
        if len(self.needs_input_grad) == 2:
            return grad_x, grad_weight
        if self.needs_input_grad[2]:
            grad_bias = bias_gradient(grad_rows)
        return grad_x, grad_weight, grad_bias

    def _masked(self, grad_weight):
        if self.mask is not None:
            grad_weight *= self.mask
        return grad_weight

    def _backward_per_image(self, grad):
        out_channels, _, kh, kw = self.weight.shape
        weights = self.weight.reshape(out_channels, -1)
        xp = array_module(grad)  # NumPy: the per-image layout is a CPU path
        grad_planes = xp.ascontiguousarray(grad).reshape(grad.shape[0], out_channels, -1)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_cols = weights.T @ grad_planes  # (N, K, OH*OW)
            grad_x = im2col_kernels.col2im_images(
                grad_cols, self.x_shape, kh, kw, self.stride, self.padding
            )
        if self.needs_input_grad[1]:
            per_image = grad_planes @ self.cols.transpose(0, 2, 1)  # (N, O, K)
            grad_weight = self._masked(per_image.sum(axis=0).reshape(self.weight.shape))
        if len(self.needs_input_grad) == 2:
            return grad_x, grad_weight
        if self.needs_input_grad[2]:
            grad_bias = grad_planes.sum(axis=(0, 2))
        return grad_x, grad_weight, grad_bias


class MaxPool2d(Function):
    """Max-pooling; the forward saves the flat input index of each window's maximum."""

    def forward(self, x, kernel_size=2, stride=2):
        self.x_shape, self.kernel_size, self.stride = x.shape, kernel_size, stride
        xp = array_module(x)
        if _runs_numba_kernels(xp):
            out, self.argmax = pool_kernels.max_pool_forward(x, kernel_size, stride)
        else:
            out, self.argmax = generic.max_pool_forward(xp, x, kernel_size, stride)
        return out

    def backward(self, grad):
        xp = array_module(grad)
        if _runs_numba_kernels(xp):
            return pool_kernels.max_pool_backward(grad, self.argmax, self.x_shape)
        return generic.max_pool_backward(
            xp, grad, self.argmax, self.x_shape, self.kernel_size, self.stride
        )
