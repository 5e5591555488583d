"""2-D convolution (im2col + one matrix multiply) and max-pooling, forward beside backward.

Shapes follow PyTorch: input (N, C, H, W), weight (O, C, KH, KW), output (N, O, OH, OW). The
index-heavy loops (im2col, col2im, pooling) are Numba kernels in ``minprune.kernels``; the
multiplies are BLAS through ``@``.
"""

from minprune.kernels import im2col as im2col_kernels
from minprune.kernels import pool as pool_kernels
from minprune.tensor import Function

__all__ = ["Conv2d", "MaxPool2d"]


class Conv2d(Function):
    def forward(self, x, weight, bias=None, stride=1, padding=0):
        n_images, _, height, width = x.shape
        out_channels, _, kh, kw = weight.shape
        out_h = im2col_kernels.conv_output_size(height, kh, stride, padding)
        out_w = im2col_kernels.conv_output_size(width, kw, stride, padding)
        self.x_shape, self.stride, self.padding = x.shape, stride, padding
        self.weight = weight
        self.cols = im2col_kernels.im2col(x, kh, kw, stride, padding)
        rows = self.cols @ weight.reshape(out_channels, -1).T  # (N*OH*OW, O)
        return im2col_kernels.rows_to_nchw(rows, bias, (n_images, out_channels, out_h, out_w))

    def backward(self, grad):
        out_channels, _, kh, kw = self.weight.shape
        grad_rows = im2col_kernels.nchw_to_rows(grad)  # (N*OH*OW, O)
        grad_x = grad_weight = grad_bias = None
        if self.needs_input_grad[0]:
            grad_cols = grad_rows @ self.weight.reshape(out_channels, -1)
            grad_x = im2col_kernels.col2im(
                grad_cols, self.x_shape, kh, kw, self.stride, self.padding
            )
        if self.needs_input_grad[1]:
            grad_weight = (grad_rows.T @ self.cols).reshape(self.weight.shape)
        if len(self.needs_input_grad) == 2:
            return grad_x, grad_weight
        if self.needs_input_grad[2]:
            grad_bias = grad_rows.sum(axis=0)
        return grad_x, grad_weight, grad_bias


class MaxPool2d(Function):
    def forward(self, x, kernel_size=2, stride=2):
        self.x_shape = x.shape
        out, self.argmax = pool_kernels.max_pool_forward(x, kernel_size, stride)
        return out

    def backward(self, grad):
        return pool_kernels.max_pool_backward(grad, self.argmax, self.x_shape)
