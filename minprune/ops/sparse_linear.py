"""The fully connected layer's op on a pruning pattern: ``y = x @ (weight * mask).T + bias``,
computing only the kept connections (Han et al. 2015 retrain the survivors with the mask fixed,
Sec. 3.5; with 92% of LeNet-300-100's fc1 pruned, dense GEMMs waste most of their work).

float32 inputs run the Numba kernels (`minprune.kernels.sparse_linear`); other dtypes run their
NumPy twins (`minprune.kernels.sparse_linear_reference`), so the op is gradient-checked in float64.
"""

import numpy as np

from minprune.kernels.sparse_linear import (
    LinearPattern,
    sparse_linear_backward,
    sparse_linear_forward,
)
from minprune.kernels.sparse_linear_reference import reference_backward, reference_forward
from minprune.tensor import Function

__all__ = ["SparseLinear", "pattern_of"]

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


class SparseLinear(Function):
    def forward(self, x, weight, bias=None, mask=None):
        self.mask = mask
        self.fast = x.dtype == weight.dtype == np.float32 and (
            bias is None or bias.dtype == np.float32
        )
        if self.fast:
            self.pattern = pattern_of(mask)
            y, self.saved = sparse_linear_forward(self.pattern, x, weight, bias)
            return y
        self.x, self.weight = x, weight
        return reference_forward(mask, x, weight, bias)

    def backward(self, grad):
        need_x, need_weight = self.needs_input_grad[0], self.needs_input_grad[1]
        if self.fast:
            grad_x, grad_weight, grad_bias = sparse_linear_backward(
                self.pattern, np.asarray(grad, dtype=np.float32), self.saved, need_x, need_weight
            )
        else:
            grad_x, grad_weight, grad_bias = reference_backward(
                self.mask, self.x, self.weight, grad
            )
        grads = (grad_x if need_x else None, grad_weight if need_weight else None)
        if len(self.needs_input_grad) == 2:
            return grads
        return (*grads, grad_bias if self.needs_input_grad[2] else None)
