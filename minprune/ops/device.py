"""Moving a tensor between devices (``Tensor.to``), forward beside backward.

The forward copies the array to the other device (`minprune.backend.to_device`); the backward
copies the gradient back to where the input lives, so a graph may cross devices and the input's
gradient still lands beside the input.
"""

from minprune.backend import device_of, to_device
from minprune.tensor import Function

__all__ = ["ToDevice"]


class ToDevice(Function):
    def forward(self, a, device="cpu"):
        self.source = device_of(a)
        return to_device(a, device)

    def backward(self, grad):
        return to_device(grad, self.source)
