"""The fully connected layer's op on a pruning pattern: ``y = x @ (weight * mask).T + bias``,
computing only the kept connections (Han et al. 2015 retrain the survivors with the mask fixed,
Sec. 3.5; with 92% of LeNet-300-100's fc1 pruned, dense GEMMs waste most of their work).

Three paths, chosen by the arrays:

- float32 NumPy arrays run the Numba kernels (`minprune.kernels.training.pattern`);
- other NumPy dtypes run their NumPy twins (`minprune.kernels.training.pattern_reference`), so the
  op is gradient-checked in float64;
- CuPy arrays (a model on the GPU) run the masked dense products, ``x @ (weight * mask).T`` and
  its two gradients, through cuBLAS: the same products up to float32 summation order, with no
  GPU sparse kernel to maintain. Whether a CSR kernel would beat cuBLAS at these densities on a
  GPU was not measured.
"""

import numpy as np

from minprune.autograd.ops.linear import bias_gradient
from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module
from minprune.kernels.training.pattern import (
    LinearPattern,
    sparse_linear_backward,
    sparse_linear_forward,
)
from minprune.kernels.training.pattern_reference import reference_backward, reference_forward

__all__ = ["SparseLinear", "pattern_of", "masked_dense_forward", "masked_dense_backward"]

# Patterns of the masks seen recently, by the mask array's identity. Sound because a layer's mask
# is read-only (`minprune.nn.Parameter.mask`): a changed mask is a new array. Each entry keeps its
# mask alive, so an id cannot be reused while it is cached.
_PATTERNS: dict[int, tuple[np.ndarray, LinearPattern]] = {}
_MAX_PATTERNS = 32


def pattern_of(mask: np.ndarray) -> LinearPattern:
    """The `LinearPattern` (index arrays of the kept connections) of ``mask``: built once per
    read-only mask; a writeable mask could change under the cache, so it is built every call."""
    if mask.flags.writeable:
        return LinearPattern(mask)
    cached = _PATTERNS.get(id(mask))
    if cached is None:
        if len(_PATTERNS) >= _MAX_PATTERNS:
            _PATTERNS.pop(next(iter(_PATTERNS)))  # the oldest entry
        cached = _PATTERNS[id(mask)] = (mask, LinearPattern(mask))
    return cached[1]


def _runs_numba_kernels(xp) -> bool:
    """NumPy arrays run the Numba kernels (or their twins); CuPy arrays the masked dense path."""
    return xp is np


def masked_dense_forward(x, weight, bias, mask):
    """``x @ (weight * mask).T + bias`` as one dense product, in the inputs' dtype, for any array
    module (the GPU path)."""
    out = x @ (weight * mask).T
    return out if bias is None else out + bias


def masked_dense_backward(x, weight, mask, grad):
    """(grad_x, grad_weight, grad_bias) of `masked_dense_forward`; grad_weight is zero where the
    mask prunes, as the sparse kernels leave it."""
    return grad @ (weight * mask), (grad.T @ x) * mask, bias_gradient(grad)


class SparseLinear(Function):
    def forward(self, x, weight, bias=None, mask=None):
        self.mask = mask
        xp = array_module(x, weight)
        if not _runs_numba_kernels(xp):
            self.path = "masked dense"
            self.x, self.weight = x, weight
            return masked_dense_forward(x, weight, bias, mask)
        fast = x.dtype == weight.dtype == np.float32 and (
            bias is None or bias.dtype == np.float32
        )
        if fast:
            self.path = "numba"
            self.pattern = pattern_of(mask)
            y, self.saved = sparse_linear_forward(self.pattern, x, weight, bias)
            return y
        self.path = "reference"
        self.x, self.weight = x, weight
        return reference_forward(mask, x, weight, bias)

    def backward(self, grad):
        need_x, need_weight = self.needs_input_grad[0], self.needs_input_grad[1]
        if self.path == "numba":
            grad_x, grad_weight, grad_bias = sparse_linear_backward(
                self.pattern, grad.astype(np.float32, copy=False), self.saved, need_x, need_weight
            )
        elif self.path == "reference":
            grad_x, grad_weight, grad_bias = reference_backward(
                self.mask, self.x, self.weight, grad
            )
        else:
            grad_x, grad_weight, grad_bias = masked_dense_backward(
                self.x, self.weight, self.mask, grad
            )
        grads = (grad_x if need_x else None, grad_weight if need_weight else None)
        if len(self.needs_input_grad) == 2:
            return grads
        return (*grads, grad_bias if self.needs_input_grad[2] else None)
