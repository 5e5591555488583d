"""2-D convolution (im2col + one matrix multiply per group) and max-pooling, forward beside
backward.

Shapes follow PyTorch and Caffe: input (N, C, H, W), weight (O, C / groups, KH, KW), output
(N, O, OH, OW). The index-heavy loops (im2col, col2im, pooling, the layout moves) come from the
backend (`minprune.autograd.backend.ops_for`): plain.py's array expressions, or fast.py's Numba
kernels, which may also lay a layer's patches out image by image (`fast.per_image_layout`). The
multiplies are BLAS (or cuBLAS) through ``@``.

Grouped convolution (Caffe's ``group``; AlexNet's conv2, conv4 and conv5 use 2 groups, the two
halves that ran on two GPUs in Krizhevsky et al. 2012): the input channels and the filters are
split into ``groups`` equal blocks, and the filters of block g see only the channels of block g.
It is an ungrouped convolution whose (O, C * KH * KW) weight matrix is block-diagonal, so the op
builds the one patch matrix of the whole input as usual and multiplies each group's columns of it
by that group's filters: one GEMM per group, the zero blocks never stored or multiplied.
"""

from minprune.autograd.backend import ops_for
from minprune.autograd.ops.linear import bias_gradient
from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module
from minprune.kernels.training.im2col import conv_output_size

__all__ = ["Conv2d", "MaxPool2d"]


def _group_blocks(groups, out_channels, taps):
    """Per group, (its filters: rows of the weight matrix, its taps: columns of the patch matrix).

    The weight matrix is (O, taps) with taps = C / groups * KH * KW; the patch matrix has
    ``groups * taps`` columns, channel-major, so group g's input channels are one contiguous block.
    """
    filters = out_channels // groups
    return [(slice(g * filters, (g + 1) * filters), slice(g * taps, (g + 1) * taps))
            for g in range(groups)]


class Conv2d(Function):
    """With ``mask`` (an array, not an input: no gradient) the op convolves with ``weight * mask``
    and masks the weight gradient: a pruned layer is one node, as in
    `minprune.autograd.ops.linear`."""

    def forward(self, x, weight, bias=None, stride=1, padding=0, groups=1, mask=None):
        if mask is not None:
            weight = weight * mask
        self.mask = mask
        self.ops = ops = ops_for(array_module(x))
        n_images, _, height, width = x.shape
        out_channels, _, kh, kw = weight.shape
        out_h = conv_output_size(height, kh, stride, padding)
        out_w = conv_output_size(width, kw, stride, padding)
        self.x_shape, self.stride, self.padding, self.groups = x.shape, stride, padding, groups
        self.weight = weight
        weights = weight.reshape(out_channels, -1)  # (O, C/groups * KH * KW)
        self.per_image_backward = None
        if ops.per_image_layout(out_h * out_w, weights.shape[1], groups):
            out, self.per_image_backward = ops.conv2d_per_image(
                x, weights, bias, kh, kw, stride, padding
            )
            return out.reshape(n_images, out_channels, out_h, out_w)
        self.cols = ops.im2col(x, kh, kw, stride, padding)  # (N*OH*OW, C*KH*KW)
        if groups == 1:
            rows = self.cols @ weights.T  # (N*OH*OW, O)
        else:
            rows = array_module(x).empty((self.cols.shape[0], out_channels), dtype=x.dtype)
            for filters, taps in _group_blocks(groups, out_channels, weights.shape[1]):
                rows[:, filters] = self.cols[:, taps] @ weights[filters].T
        return ops.rows_to_nchw(rows, bias, (n_images, out_channels, out_h, out_w))

    def backward(self, grad):
        need_x, need_weight, need_bias = self.needs_input_grad
        if self.per_image_backward is not None:
            planes = array_module(grad).ascontiguousarray(grad).reshape(*grad.shape[:2], -1)
            grad_x, grad_weights, grad_bias = self.per_image_backward(
                planes, need_x, need_weight, need_bias
            )
            grad_weight = None if grad_weights is None else self._masked(grad_weights)
            return grad_x, grad_weight, grad_bias
        out_channels, _, kh, kw = self.weight.shape
        weights = self.weight.reshape(out_channels, -1)
        blocks = _group_blocks(self.groups, out_channels, weights.shape[1])
        xp = array_module(grad)
        grad_rows = self.ops.nchw_to_rows(grad)  # (N*OH*OW, O)
        grad_x = grad_weight = grad_bias = None
        if need_x:
            if self.groups == 1:
                grad_cols = grad_rows @ weights
            else:
                grad_cols = xp.empty(self.cols.shape, dtype=grad.dtype)
                for filters, taps in blocks:
                    grad_cols[:, taps] = grad_rows[:, filters] @ weights[filters]
            grad_x = self.ops.col2im(grad_cols, self.x_shape, kh, kw, self.stride, self.padding)
        if need_weight:
            if self.groups == 1:
                grad_weights = grad_rows.T @ self.cols
            else:
                grad_weights = xp.empty(weights.shape, dtype=grad.dtype)
                for filters, taps in blocks:
                    grad_weights[filters] = grad_rows[:, filters].T @ self.cols[:, taps]
            grad_weight = self._masked(grad_weights)
        if need_bias:
            grad_bias = bias_gradient(grad_rows)
        return grad_x, grad_weight, grad_bias

    def _masked(self, grad_weights):
        """The (O, K) weight gradient in the weight's shape, zero where the mask prunes."""
        grad_weight = grad_weights.reshape(self.weight.shape)
        if self.mask is not None:
            grad_weight *= self.mask
        return grad_weight


class MaxPool2d(Function):
    """Max-pooling; the forward saves the flat input index of each window's maximum."""

    def forward(self, x, kernel_size=2, stride=2):
        self.x_shape, self.kernel_size, self.stride = x.shape, kernel_size, stride
        self.ops = ops_for(array_module(x))
        out, self.argmax = self.ops.max_pool_forward(x, kernel_size, stride)
        return out

    def backward(self, grad):
        return self.ops.max_pool_backward(
            grad, self.argmax, self.x_shape, self.kernel_size, self.stride
        )
