"""The checked entry point of the masked SGD-momentum update, `minprune.training.optim.SGD`'s step
for weights that carry a mask. Arguments are validated here (dtype, shape, contiguity, no aliasing)
before the Numba kernel (`masked_sgd_cpu`) runs. Masks are float32 or bool; non-zero keeps.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.checks import require_array, require_nonnegative_float
from minprune.kernels.training.masked_sgd_cpu import masked_sgd_momentum_cpu

__all__ = [
    "MASK_DTYPES",
    "validate_sgd_arguments",
    "masked_sgd_momentum_update",
    "MaskedSGDStep",
]

MASK_DTYPES = (np.dtype(np.float32), np.dtype(np.bool_))
_FLOAT32 = np.float32


def validate_sgd_arguments(
    weight, velocity, grad, mask, lr, momentum, weight_decay, l1, *, allow_device: bool = False
) -> dict[str, np.float32]:
    """Check the arguments of a masked SGD update (device arrays too with ``allow_device``); return
    the four hyper-parameters as float32 scalars, so kernels compute in float32 like the reference.
    """
    any_shape = (None,) * len(getattr(weight, "shape", ()))
    require_array("weight", weight, dtypes=_FLOAT32, shape=any_shape, allow_device=allow_device)
    shape = tuple(weight.shape)
    for name, array, dtypes in (
        ("velocity", velocity, _FLOAT32),
        ("grad", grad, _FLOAT32),
        ("mask", mask, MASK_DTYPES),
    ):
        require_array(name, array, dtypes=dtypes, shape=shape, allow_device=allow_device)
    for name, array in (("weight", weight), ("velocity", velocity)):
        if isinstance(array, np.ndarray) and not array.flags.writeable:
            raise ValueError(f"{name}: is read-only, but the update writes it in place")
    arrays = {"weight": weight, "velocity": velocity, "grad": grad}
    for first, second in (("weight", "velocity"), ("weight", "grad"), ("velocity", "grad")):
        a, b = arrays[first], arrays[second]
        same = a is b or (
            isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.may_share_memory(a, b)
        )
        if same:
            raise ValueError(f"{first} and {second}: must be separate arrays, they share memory")
    return {
        name: np.float32(require_nonnegative_float(name, value))
        for name, value in (
            ("lr", lr),
            ("momentum", momentum),
            ("weight_decay", weight_decay),
            ("l1", l1),
        )
    }


def masked_sgd_momentum_update(
    weight: np.ndarray,
    velocity: np.ndarray,
    grad: np.ndarray,
    mask: np.ndarray,
    *,
    lr: float,
    momentum: float,
    weight_decay: float = 0.0,
    l1: float = 0.0,
) -> None:
    """In place, one pass:  g = grad + weight_decay*w + l1*sign(w);  v = momentum*v + g;
    w -= lr*v;  then w = v = 0 wherever mask == 0.

    ``weight_decay`` is L2 regularisation, ``l1`` L1 (Han et al. 2015 compare both, Sec. 3.1 and
    Fig. 5: L1 is better right after pruning, L2 after retraining). Departure: this is PyTorch's
    form of momentum (lr applied after the velocity); Caffe, which the paper used, folds lr into
    the velocity, v = momentum*v + lr*g, w -= v. The two agree while lr is constant and differ
    slightly when it changes between steps.
    """
    hyper = validate_sgd_arguments(weight, velocity, grad, mask, lr, momentum, weight_decay, l1)
    masked_sgd_momentum_cpu(
        weight.reshape(-1),
        velocity.reshape(-1),
        grad.reshape(-1),
        mask.reshape(-1),
        hyper["lr"],
        hyper["momentum"],
        hyper["weight_decay"],
        hyper["l1"],
    )


class MaskedSGDStep:
    """`masked_sgd_momentum_update` for one parameter, step after step, checked at the price of
    a few comparisons: the weight, velocity, mask and hyper-parameters are validated in full on
    the first call and again whenever one of them is another object or value; other calls check
    the new gradient only (dtype, shape, contiguity, no shared memory), so the full check is
    paid once per parameter rather than every step.
    """

    def __init__(self):
        self._checked = None  # (weight, velocity, mask, lr, momentum, weight_decay, l1)
        self._hyper = None

    def __call__(self, weight, velocity, grad, mask, *, lr, momentum, weight_decay=0.0, l1=0.0):
        arguments = (weight, velocity, mask, lr, momentum, weight_decay, l1)
        checked = self._checked
        same = (
            checked is not None
            and all(a is b for a, b in zip(arguments[:3], checked[:3], strict=True))
            and arguments[3:] == checked[3:]
        )
        grad_fits = (
            isinstance(grad, np.ndarray)
            and grad.dtype == _FLOAT32
            and grad.shape == weight.shape
            and grad.flags.c_contiguous
            and not np.may_share_memory(grad, weight)
            and not np.may_share_memory(grad, velocity)
        )
        if not (same and grad_fits):
            self._hyper = validate_sgd_arguments(
                weight, velocity, grad, mask, lr, momentum, weight_decay, l1
            )
            self._checked = arguments
        hyper = self._hyper
        masked_sgd_momentum_cpu(
            weight.reshape(-1), velocity.reshape(-1), grad.reshape(-1), mask.reshape(-1),
            hyper["lr"], hyper["momentum"], hyper["weight_decay"], hyper["l1"],
        )
