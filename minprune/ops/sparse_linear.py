"""The fully connected layer's op on a pruning pattern: ``y = x @ (weight * mask).T + bias``,
computing only the kept connections (Han et al. 2015 retrain the survivors with the mask fixed,
Sec. 3.5; with 92% of LeNet-300-100's fc1 pruned, the dense GEMMs waste most of their work).

The mask enters as a `minprune.kernels.sparse_linear_ops.LinearPattern` option, not as a tensor:
it is a constant. float32 inputs run the Numba kernels; other dtypes (float64 gradient checks)
run the NumPy reference formulas of the same module, so the op's wiring is gradient-checked in
float64 and the kernels are tested against that reference.
"""

import numpy as np

from minprune.kernels import sparse_linear_ops
from minprune.tensor import Function

__all__ = ["SparseLinear"]


class SparseLinear(Function):
    def forward(self, x, weight, bias=None, pattern=None):
        self.pattern = pattern
        self.fast = x.dtype == weight.dtype == np.float32 and (
            bias is None or bias.dtype == np.float32
        )
        if self.fast:
            y, self.saved = sparse_linear_ops.sparse_linear_forward(pattern, x, weight, bias)
            return y
        self.x, self.weight = x, weight
        return sparse_linear_ops.reference_forward(pattern.mask, x, weight, bias)

    def backward(self, grad):
        need_x, need_weight = self.needs_input_grad[0], self.needs_input_grad[1]
        if self.fast:
            grad_x, grad_weight, grad_bias = sparse_linear_ops.sparse_linear_backward(
                self.pattern, np.asarray(grad, dtype=np.float32), self.saved, need_x, need_weight
            )
        else:
            grad_x, grad_weight, grad_bias = sparse_linear_ops.reference_backward(
                self.pattern.mask, self.x, self.weight, grad
            )
        grads = (grad_x if need_x else None, grad_weight if need_weight else None)
        if len(self.needs_input_grad) == 2:
            return grads
        return (*grads, grad_bias if self.needs_input_grad[2] else None)
