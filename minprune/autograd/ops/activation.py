"""ReLU, log-softmax, the fused cross-entropy loss and inverted dropout."""

import numpy as np

from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module

__all__ = ["ReLU", "LogSoftmax", "CrossEntropy", "Dropout"]


class ReLU(Function):
    """max(x, 0); the gradient passes where the input was positive."""

    def forward(self, a):
        self.positive = a > 0
        return a * self.positive

    def backward(self, grad):
        return grad * self.positive


def _log_softmax(x, axis):
    """Numerically stable log-softmax: subtract the max before exponentiating."""
    xp = array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        self.axis = axis
        self.out = _log_softmax(x, axis)
        return self.out

    def backward(self, grad):
        xp = array_module(grad)
        return grad - xp.exp(self.out) * grad.sum(axis=self.axis, keepdims=True)


class CrossEntropy(Function):
    """Mean negative log-likelihood of integer ``labels`` under ``softmax(logits)``, fused.

    Fusing log-softmax with the loss keeps it stable (no log of a rounded-to-zero probability)
    and gives the short backward (softmax - one_hot) / N.
    """

    def forward(self, logits, labels=None):
        xp = array_module(logits)
        n = logits.shape[0]
        self.labels = labels
        self.log_probs = _log_softmax(logits, axis=1)
        picked = self.log_probs[xp.arange(n), labels]
        return -picked.mean(dtype=logits.dtype)

    def backward(self, grad):
        xp = array_module(grad)
        n = self.log_probs.shape[0]
        dlogits = xp.exp(self.log_probs)
        dlogits[xp.arange(n), self.labels] -= 1
        dlogits *= grad / n
        return dlogits


class Dropout(Function):
    """Inverted dropout: zero each input with probability ``p`` and scale survivors by 1/(1-p),
    so evaluation needs no rescaling.

    The random numbers are drawn on the host from ``rng`` (minprune's NumPy generator) and the
    mask is copied to the input's device, so a GPU run draws exactly the masks a CPU run with the
    same seed draws, and a checkpoint's generator state resumes either. The price is one
    host-to-GPU copy of the mask per call (N x features bytes; not measured).
    """

    def forward(self, x, p=0.5, rng=None):
        xp = array_module(x)
        keep = xp.asarray(rng.random(x.shape, dtype=np.float32) >= p)
        self.scale = keep.astype(x.dtype) / x.dtype.type(1.0 - p)
        return x * self.scale

    def backward(self, grad):
        return grad * self.scale
