"""Indexing, ``t[index]``, forward beside backward.

The forward is NumPy's own ``a[index]``, so every index NumPy accepts works (ints, slices, ``...``,
``None``, integer and boolean arrays) and every index it rejects raises NumPy's IndexError. The
backward scatters the gradient into zeros shaped like the input with ``add.at``, which accumulates
where an index repeats: ``t[[0, 0]]`` sends row 0 both gradients, where ``zeros[index] = grad``
would keep only one of them.
"""

from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module

__all__ = ["Index"]


class Index(Function):
    def forward(self, a, index):
        self.shape, self.index = a.shape, index
        return a[index]

    def backward(self, grad):
        xp = array_module(grad)
        grad_a = xp.zeros(self.shape, dtype=grad.dtype)
        xp.add.at(grad_a, self.index, grad)
        return grad_a
