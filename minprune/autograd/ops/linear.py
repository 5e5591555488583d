"""The fully connected layer's op, fused: ``y = x @ weight.T + bias``.

One node instead of mask multiply + transpose + matmul + add keeps the graph short on the hot
path. The weight is (out_features, in_features), PyTorch's layout, so a row of the weight is one
output neuron; the layers pass their ``weight_mask`` as ``mask``.
"""

from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module

__all__ = ["Linear", "bias_gradient"]


def bias_gradient(grad_rows):
    """Column sums of a (rows, features) gradient: the gradient of a bias added to every row.

    A matrix-vector product with a ones vector (BLAS), which is faster than ``sum(axis=0)`` on the
    tall arrays of a convolution (LeNet-5's conv1 at batch 64: (36864, 20)).
    """
    xp = array_module(grad_rows)
    return xp.ones(grad_rows.shape[0], dtype=grad_rows.dtype) @ grad_rows


class Linear(Function):
    """With ``mask`` (an array, not an input: no gradient) a masked layer is one node:
    ``y = x @ (weight * mask).T + bias``, weight gradient ``(g.T @ x) * mask``."""

    def forward(self, x, weight, bias=None, mask=None):
        if mask is not None:
            weight = weight * mask
        self.x, self.weight, self.mask = x, weight, mask
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        x2 = self.x.reshape(-1, self.x.shape[-1])
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_x = (grad @ self.weight) if self.needs_input_grad[0] else None
        grad_weight = (g2.T @ x2) if self.needs_input_grad[1] else None
        if grad_weight is not None and self.mask is not None:
            grad_weight *= self.mask
        grad_bias = bias_gradient(g2) if self.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias
