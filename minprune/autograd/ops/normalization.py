"""Local response normalisation across channels (Caffe's ``LRN`` layer, ``ACROSS_CHANNELS``),
forward beside backward.

AlexNet (Krizhevsky et al. 2012, Sec. 3.3) divides each activation by the activity of its
neighbours along the channel axis. For an input ``a`` of shape (N, C, H, W):

    scale[n, c, h, w] = k + (alpha / size) * sum of a[n, j, h, w] ** 2 over the ``size`` channels j
                                            centred on c (channels past either edge count as 0)
    b[n, c, h, w]     = a[n, c, h, w] * scale[n, c, h, w] ** -beta

Dividing alpha by ``size`` is Caffe's convention, and ``torch.nn.LocalResponseNorm``'s (the tests
compare the two); Krizhevsky et al. write alpha alone, and use k = 2 where Caffe's AlexNet uses
k = 1 (size 5, alpha 1e-4, beta 0.75). ``size`` is odd, as Caffe requires, so each window is
centred.

The backward is the one Caffe's ``lrn_layer.cpp`` computes. Differentiating b[j] with respect to
a[c] gives a direct term and one through scale[j] for every window j that contains c; the windows
are symmetric, so those j are exactly the window of c:

    grad_a[c] = grad_b[c] * scale[c] ** -beta
                - (2 * alpha * beta / size) * a[c] * sum over the window of c of
                  grad_b[j] * b[j] / scale[j]
"""

from minprune.autograd.tensor import Function
from minprune.base.arrays import array_module

__all__ = ["LocalResponseNorm", "channel_window_sum"]


def channel_window_sum(values, size: int):
    """For each channel c of ``values`` (N, C, ...), the sum over the ``size`` channels centred on
    c, counting channels past either edge as zero (``size`` odd)."""
    xp = array_module(values)
    half, channels = size // 2, values.shape[1]
    padded = xp.zeros((values.shape[0], channels + 2 * half) + values.shape[2:], values.dtype)
    padded[:, half : half + channels] = values
    total = padded[:, 0:channels].copy()
    for offset in range(1, size):
        total += padded[:, offset : offset + channels]
    return total


class LocalResponseNorm(Function):
    def forward(self, a, size=5, alpha=1e-4, beta=0.75, k=1.0):
        self.a, self.size, self.alpha, self.beta = a, size, alpha, beta
        self.scale = k + (alpha / size) * channel_window_sum(a * a, size)
        self.factor = self.scale ** -beta  # b = a * factor
        return a * self.factor

    def backward(self, grad):
        b_over_scale = self.a * self.factor / self.scale
        through_scale = channel_window_sum(grad * b_over_scale, self.size)
        coefficient = 2.0 * self.alpha * self.beta / self.size
        return grad * self.factor - coefficient * self.a * through_scale
