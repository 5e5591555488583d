"""Functional forms of the ops, as in ``torch.nn.functional``.

These are the boundary where shapes and options are checked: each raises ``ValueError`` naming
the argument, what it got and what it expected, before any kernel runs. Labels and masks given as
plain arrays follow the device of the tensor they go with (`minprune.base.arrays.to_device`).
"""

import math

import numpy as np

import minprune.base.random as minprune_random
from minprune.autograd.ops import activation, arithmetic, conv, normalization
from minprune.autograd.ops import linear as linear_op
from minprune.autograd.ops import pattern_linear as sparse_linear_op
from minprune.autograd.tensor import Tensor
from minprune.base.arrays import to_device

__all__ = [
    "exp",
    "log",
    "relu",
    "log_softmax",
    "cross_entropy",
    "dropout",
    "linear",
    "conv2d",
    "max_pool2d",
    "local_response_norm",
    "sparse_linear",
]


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def exp(x):
    """e ** x, elementwise."""
    return arithmetic.Exp.apply(x)


def log(x):
    """The natural log, elementwise (as in NumPy, 0 gives -inf and negative inputs nan)."""
    return arithmetic.Log.apply(x)


def relu(x):
    """max(x, 0), elementwise."""
    return activation.ReLU.apply(x)


def log_softmax(x, axis: int = -1):
    """log(softmax(x)) along ``axis``, computed stably."""
    return activation.LogSoftmax.apply(x, axis=axis)


def cross_entropy(logits, labels):
    """Mean cross-entropy of ``logits`` (N, classes) against integer ``labels`` (N,).

    Raises ValueError when the shapes disagree or a label is outside [0, classes).
    """
    logits = _tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, classes), got shape {logits.shape}")
    labels = to_device(labels.data if isinstance(labels, Tensor) else labels, logits.device)
    n, classes = logits.shape
    if labels.shape != (n,):
        raise ValueError(f"cross_entropy: labels must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(f"cross_entropy: label {bad} is out of range [0, {classes})")
    return activation.CrossEntropy.apply(logits, labels=labels.astype(np.int64, copy=False))


def dropout(x, p: float = 0.5, training: bool = True, rng=None):
    """Inverted dropout; the identity when not ``training`` or ``p == 0``.

    ``rng`` defaults to minprune's global generator (``minprune.manual_seed``).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return _tensor(x)
    return activation.Dropout.apply(x, p=p, rng=rng or minprune_random.generator())


def linear(x, weight, bias=None, *, mask=None):
    """``x @ weight.T + bias`` with weight (out_features, in_features); with ``mask`` (an array of
    the weight's shape, no gradient), ``x @ (weight * mask).T + bias`` as one op."""
    x, weight = _tensor(x), _tensor(weight)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input of shape (..., {weight.shape[1]}) (in_features last), "
            f"got {x.shape}"
        )
    return linear_op.Linear.apply(x, weight, bias, mask=mask)


def sparse_linear(x, weight, bias, mask, *, patterns=None):
    """``x @ (weight * mask).T + bias`` computed on the kept connections only (mask != 0), for
    x (N, in_features) and weight and mask (out_features, in_features). ``patterns``: the
    calling layer's `PatternCache` (else the mask's index arrays are built for this call). (Plain
    backend and GPU: the masked dense product, `minprune.autograd.ops.pattern_linear`.)"""
    x, weight = _tensor(x), _tensor(weight)
    mask = to_device(mask, weight.device)
    if x.ndim != 2 or weight.shape != mask.shape or x.shape[1] != mask.shape[1]:
        raise ValueError(
            f"sparse_linear: expected input of shape (N, {mask.shape[1]}) and weight of the "
            f"mask's shape {mask.shape}, got input {x.shape} and weight {weight.shape}"
        )
    return sparse_linear_op.SparseLinear.apply(x, weight, bias, mask=mask, patterns=patterns)


def _positive_int(name, value, minimum=1):
    if not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1, *,
           mask=None):
    """2-D convolution of ``x`` (N, C, H, W) with ``weight`` (O, C / groups, KH, KW); with
    ``mask`` (an array of the weight's shape, no gradient), with ``weight * mask``, as one op.

    With ``groups`` > 1 the channels and the filters split into that many equal blocks, block g
    of the filters seeing only block g of the channels (Caffe's ``group``, as in AlexNet's conv2,
    conv4 and conv5); C and O must both be divisible by ``groups``.
    """
    x, weight = _tensor(x), _tensor(weight)
    stride = _positive_int("conv2d: stride", stride)
    padding = _positive_int("conv2d: padding", padding, minimum=0)
    groups = _positive_int("conv2d: groups", groups)
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input of shape (N, C, H, W), got {x.shape}")
    if weight.ndim != 4:
        raise ValueError(
            f"conv2d: expected weight of shape (O, C / groups, KH, KW), got {weight.shape}"
        )
    if x.shape[1] % groups:
        raise ValueError(
            f"conv2d: the input's {x.shape[1]} channels are not divisible by groups={groups}"
        )
    if weight.shape[0] % groups:
        raise ValueError(
            f"conv2d: the weight's {weight.shape[0]} filters (out_channels) are not divisible by "
            f"groups={groups}"
        )
    if weight.shape[1] * groups != x.shape[1]:
        grouped = f" and groups={groups}" if groups != 1 else ""
        raise ValueError(
            f"conv2d: expected input of shape (N, {weight.shape[1] * groups}, H, W) for weight "
            f"{weight.shape}{grouped}, got {x.shape}"
        )
    kh, kw = weight.shape[2:]
    if x.shape[2] + 2 * padding < kh or x.shape[3] + 2 * padding < kw:
        raise ValueError(
            f"conv2d: kernel {kh}x{kw} is larger than the padded input "
            f"{x.shape[2] + 2 * padding}x{x.shape[3] + 2 * padding}"
        )
    return conv.Conv2d.apply(
        x, weight, bias, stride=stride, padding=padding, groups=groups, mask=mask
    )


def max_pool2d(x, kernel_size: int, stride: int | None = None):
    """Max-pooling over square ``kernel_size`` windows (stride defaults to the kernel size)."""
    x = _tensor(x)
    kernel_size = _positive_int("max_pool2d: kernel_size", kernel_size)
    stride = kernel_size if stride is None else _positive_int("max_pool2d: stride", stride)
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: expected input of shape (N, C, H, W), got {x.shape}")
    if x.shape[2] < kernel_size or x.shape[3] < kernel_size:
        raise ValueError(
            f"max_pool2d: kernel {kernel_size} is larger than the input {x.shape[2]}x{x.shape[3]}"
        )
    return conv.MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride)


def _finite_number(name, value, minimum=None, above=None):
    is_number = isinstance(value, int | float | np.integer | np.floating)
    if not is_number or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be > {above}, got {value!r}")
    return float(value)


def local_response_norm(x, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
    """Local response normalisation across channels, as Caffe's LRN layer and
    ``torch.nn.functional.local_response_norm`` compute it, for ``x`` (N, C, H, W):
    ``x / (k + alpha / size * sum of x**2 over the size channels centred on each) ** beta``.

    AlexNet uses ``size=5, alpha=1e-4, beta=0.75, k=1`` (see `minprune.autograd.ops.normalization`
    for the formula, its backward, and how it differs from Krizhevsky et al.'s). ``size`` must be
    odd (Caffe centres the window); ``k > 0`` and ``alpha >= 0`` keep the divisor positive.
    """
    x = _tensor(x)
    size = _positive_int("local_response_norm: size", size)
    if size % 2 == 0:
        raise ValueError(
            f"local_response_norm: size must be odd (Caffe centres the window on each channel), "
            f"got {size}"
        )
    alpha = _finite_number("local_response_norm: alpha", alpha, minimum=0.0)
    beta = _finite_number("local_response_norm: beta", beta)
    k = _finite_number("local_response_norm: k", k, above=0.0)
    if x.ndim != 4:
        raise ValueError(
            f"local_response_norm: expected input of shape (N, C, H, W), got {x.shape}"
        )
    return normalization.LocalResponseNorm.apply(x, size=size, alpha=alpha, beta=beta, k=k)
