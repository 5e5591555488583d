"""The fused masked SGD-momentum update as a Numba CUDA kernel: the GPU twin of
`minprune.kernels.training.masked_sgd_cpu`, same contract, same reference (`masked_sgd_reference`).

Where it is used: `minprune.training.optim.SGD`'s step for masked float32 weights of a model on the
GPU (``model.to("cuda")``), which passes the CuPy arrays themselves (Numba reads them through
``__cuda_array_interface__``, no copies); its tests run it under ``NUMBA_ENABLE_CUDASIM=1`` in CI
and on a GPU with ``pytest -m cuda``. Importable without a GPU. numpy arguments are copied to the
device and back; device arrays (Numba's or CuPy's) are updated in place.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from minprune.kernels.checks import is_device_array
from minprune.kernels.cuda_support import blocks_for, to_device
from minprune.kernels.training.masked_sgd import validate_sgd_arguments

__all__ = ["masked_sgd_momentum_update_cuda"]

_THREADS_1D = 256


@cuda.jit
def _masked_sgd_momentum_kernel(weight, velocity, grad, mask, lr, momentum, weight_decay, l1):
    """The fused update of `masked_sgd_cpu._masked_sgd_momentum`, one thread per element."""
    i = cuda.grid(1)
    if i >= weight.shape[0]:
        return
    if mask[i] == 0:
        weight[i] = 0.0
        velocity[i] = 0.0
    else:
        w = weight[i]
        sign = np.float32(1.0) if w > 0 else (np.float32(-1.0) if w < 0 else np.float32(0.0))
        g = grad[i] + weight_decay * w + l1 * sign
        v = momentum * velocity[i] + g
        velocity[i] = v
        weight[i] = w - lr * v


def masked_sgd_momentum_update_cuda(
    weight, velocity, grad, mask, *, lr, momentum, weight_decay=0.0, l1=0.0
) -> None:
    """In-place masked SGD-momentum step on the GPU (formula in `masked_sgd`). Numpy arguments are
    copied to the device and the new weight and velocity copied back into them."""
    hyper = validate_sgd_arguments(
        weight, velocity, grad, mask, lr, momentum, weight_decay, l1, allow_device=True
    )
    device = {
        name: to_device(array)
        for name, array in (
            ("weight", weight),
            ("velocity", velocity),
            ("grad", grad),
            ("mask", mask),
        )
    }
    size = int(np.prod(weight.shape))
    _masked_sgd_momentum_kernel[blocks_for(size, _THREADS_1D), _THREADS_1D](
        device["weight"].reshape(size),
        device["velocity"].reshape(size),
        device["grad"].reshape(size),
        device["mask"].reshape(size),
        hyper["lr"],
        hyper["momentum"],
        hyper["weight_decay"],
        hyper["l1"],
    )
    for name, array in (("weight", weight), ("velocity", velocity)):
        if not is_device_array(array):
            device[name].copy_to_host(array)
