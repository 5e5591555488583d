"""Moving a tensor between devices (``Tensor.to``), forward beside backward.

The forward copies the array to the other device (`minprune.base.arrays.to_device`); the backward
copies the gradient back to where the input lives, so a graph may cross devices and the input's
gradient still lands beside the input.
"""

from minprune.autograd.tensor import Function
from minprune.base.arrays import device_of, to_device

__all__ = ["ToDevice"]


class ToDevice(Function):
    def forward(self, a, device="cpu"):
        self.source = device_of(a)
        return to_device(a, device)

    def backward(self, grad):
        return to_device(grad, self.source)
