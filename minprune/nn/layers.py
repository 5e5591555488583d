"""The layers the paper's networks are built from (the LeNets, AlexNet, VGG-16).

``Linear`` and ``Conv2d`` weights carry a mask (``layer.weight_mask``, all ones until pruned) that
joins the forward as ``weight * weight_mask``, so autograd gives pruned connections a zero
gradient. Weights start as in Caffe's LeNet (``xavier``: uniform in +-sqrt(3 / fan_in)), biases 0.
Parameters are created on the host, from minprune's NumPy generator (as PyTorch creates them on
the CPU); ``model.to("cuda")`` moves them (`minprune.nn.Module.to`).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict

import numpy as np

import minprune.autograd.functional as F
from minprune.autograd.ops.pattern_linear import PatternCache
from minprune.base.random import generator
from minprune.nn.module import Module, Parameter

__all__ = [
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "LocalResponseNorm",
    "ReLU",
    "Dropout",
    "Flatten",
    "Sequential",
]


def xavier_uniform(shape, fan_in: int) -> np.ndarray:
    """Caffe's ``xavier`` filler: uniform in [-a, a] with a = sqrt(3 / fan_in)."""
    bound = math.sqrt(3.0 / fan_in)
    return generator().uniform(-bound, bound, size=shape).astype(np.float32)


class _MaskedLayer(Module):
    """Shared by Linear and Conv2d: a weight with its mask, and an optional bias."""

    def _init_weight(self, shape, fan_in: int, bias: bool) -> None:
        self.weight = Parameter(xavier_uniform(shape, fan_in))
        self.weight.mask = np.ones(shape, dtype=np.float32)
        self.bias = Parameter(np.zeros(shape[0], dtype=np.float32)) if bias else None

    @property
    def weight_mask(self) -> np.ndarray:
        """The weight's mask (``weight.mask``; 1 keeps, 0 prunes): read-only, change it by
        assigning a new one (`minprune.prune.set_mask` also zeroes the pruned weights)."""
        return self.weight.mask

    @weight_mask.setter
    def weight_mask(self, mask) -> None:
        try:
            self.weight.mask = mask
        except ValueError as error:
            problem = str(error).removeprefix("mask: ")
            layer = f"{type(self).__name__} '{self.name}'"
            raise ValueError(f"{layer} weight_mask: {problem}") from None

    def masked_weight(self):
        """The weight as the forward sees it: ``weight * weight_mask``."""
        return self.weight * self.weight_mask

    @contextlib.contextmanager
    def _named_errors(self):
        """Shapes are checked once, in `minprune.autograd.functional`; this prefixes the layer's
        name."""
        try:
            yield
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} '{self.name}': {error}") from None


class Linear(_MaskedLayer):
    """``y = x @ (weight * weight_mask).T + bias`` with weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_weight((out_features, in_features), fan_in=in_features, bias=bias)
        # Compute on the kept connections only (`F.sparse_linear`); `minprune.prune.retrain`
        # switches this on for sparse layers (`minprune.prune.sparse_kernels`).
        self.sparse_kernels = False
        self.patterns = PatternCache()  # the mask's index arrays for the sparse op, kept here

    def forward(self, x):
        with self._named_errors():
            if self.sparse_kernels:
                return F.sparse_linear(x, self.weight, self.bias, self.weight_mask,
                                       patterns=self.patterns)
            return F.linear(x, self.weight, self.bias, mask=self.weight_mask)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Conv2d(_MaskedLayer):
    """2-D convolution with weight (out_channels, in_channels / groups, kernel_size, kernel_size).

    ``groups`` > 1 splits the channels and filters into that many blocks, each filter seeing only
    its block's channels (Caffe's ``group``; AlexNet's conv2, conv4, conv5 use 2). The mask has
    the weight's shape, so a grouped layer prunes like any other.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        *,
        groups: int = 1,
    ):
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"Conv2d: groups must be an int >= 1, got {groups!r}")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"Conv2d: {name}={channels} is not divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        fan_in = in_channels // groups * kernel_size * kernel_size  # what one output sees
        self._init_weight(shape, fan_in=fan_in, bias=bias)

    def forward(self, x):
        with self._named_errors():
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups,
                            mask=self.weight_mask)

    def extra_repr(self) -> str:
        grouped = f", groups={self.groups}" if self.groups != 1 else ""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}{grouped}"
        )


class MaxPool2d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class LocalResponseNorm(Module):
    """Local response normalisation across channels (Caffe's LRN, AlexNet's norm1 and norm2):
    ``x / (k + alpha / size * sum of x**2 over size neighbouring channels) ** beta``; see
    `minprune.autograd.functional.local_response_norm`. No parameters; the arguments are
    PyTorch's."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Dropout(Module):
    """Inverted dropout with probability ``p``; the identity in eval mode.

    ``original_p`` is the ratio the layer was built with, D_o of Han et al. Sec. 3.2, and never
    changes; ``p`` is the ratio in use, which the pruning code lowers for retraining
    (`minprune.prune.dropout.adjust_dropout`: D_r = D_o * sqrt(C_ir / C_io), always from
    ``original_p``, so that pruning twice to the same density gives the same D_r).
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.original_p = p
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        if self.p == self.original_p:
            return f"p={self.p}"
        return f"p={self.p}, original_p={self.original_p}"


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class Sequential(Module):
    """Modules applied in order. Give an ``OrderedDict`` (or name=module pairs) to name them."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict | dict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self._modules.values())[key]
        return self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
