"""The fully connected layer's op on a pruning pattern: ``y = x @ (weight * mask).T + bias``,
computing only the kept connections (Han et al. 2015 retrain the survivors with the mask fixed,
Sec. 3; with 92% of LeNet-300-100's fc1 pruned, dense GEMMs waste most of their work).

The backend (`minprune.autograd.backend.ops_for`) supplies the product, chosen once per forward:

- fast, float32 NumPy arrays: the Numba kernels on the mask's index arrays
  (`minprune.kernels.training.pattern`); other NumPy dtypes their float64 NumPy twins
  (`minprune.kernels.training.pattern_reference`), so the op is gradient-checked;
- plain, and CuPy arrays (a model on the GPU): the masked dense products, ``x @ (weight *
  mask).T`` and its two gradients (through cuBLAS on a GPU): the same products up to float32
  summation order. Whether a CSR kernel would beat cuBLAS at these densities on a GPU was not
  measured.

The index arrays of a mask (`LinearPattern`) cost more to build than one training step, so a
layer keeps them in its own `PatternCache`: nothing outlives the layer, and a new mask replaces
the old pattern.
"""

from __future__ import annotations

import weakref

from minprune.autograd.backend import ops_for
from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module
from minprune.kernels.training.pattern import LinearPattern

__all__ = ["SparseLinear", "PatternCache"]


class PatternCache:
    """The `LinearPattern` of the last mask one layer trained on, owned by that layer
    (`minprune.nn.Linear`); `minprune.prune.sparse_kernels` empties it when its block ends.

    It holds the mask weakly and the pattern strongly: a mask that is replaced and dropped is
    freed, and the next lookup builds the new mask's pattern. Sound because a layer's mask is
    read-only (`minprune.nn.Parameter.mask`): a changed mask is a new array. A writeable mask
    could change under the cache, so its pattern is built every call.
    """

    def __init__(self):
        self._mask = None  # a weak reference to the mask the pattern was built from
        self._pattern = None

    def pattern_of(self, mask) -> LinearPattern:
        if mask.flags.writeable:
            return LinearPattern(mask)
        if self._mask is None or self._mask() is not mask:
            self._mask, self._pattern = weakref.ref(mask), LinearPattern(mask)
        return self._pattern

    def clear(self) -> None:
        self._mask = self._pattern = None

    def __deepcopy__(self, memo):
        return PatternCache()  # a copied layer builds its own pattern from its own mask


class SparseLinear(Function):
    def forward(self, x, weight, bias=None, mask=None, patterns=None):
        ops = ops_for(array_module(x, weight))
        out, self.product_backward = ops.pattern_linear(x, weight, bias, mask, patterns)
        return out

    def backward(self, grad):
        need_x, need_weight, need_bias = self.needs_input_grad
        grad_x, grad_weight, grad_bias = self.product_backward(grad, need_x, need_weight)
        return (
            grad_x if need_x else None,
            grad_weight if need_weight else None,
            grad_bias if need_bias else None,
        )
