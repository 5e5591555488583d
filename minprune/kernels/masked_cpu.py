"""Numba CPU kernels for masked dense layers: masked matmul forward/backward, masked SGD update.

While a network is pruned and retrained (Han et al. 2015, Sec. 3) its weights stay dense, with a
0/1 mask; the mask must act in three places or pruned weights come back to life:
the forward pass uses W * M, the weight gradient is masked, and the update keeps masked weights 0.

Plain Python functions jitted by assignment (minitorch style); ``NUMBA_DISABLE_JIT=1`` runs them as
Python. No argument checks here -- `minprune.kernels.masked_ops` validates first.

"Masking" is a select, ``value if mask != 0 else 0``, not a multiply: it gives an exact +0.0 even
where the value is negative, infinite or NaN (where ``value * 0`` would give -0.0 or NaN).
The matrix products call BLAS through ``np.dot`` (Numba binds it to the same BLAS as NumPy): a
hand-written Numba triple loop would be an order of magnitude slower than BLAS on the dense part.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "select_masked_cpu",
    "masked_linear_forward_cpu",
    "masked_linear_backward_cpu",
    "masked_sgd_momentum_cpu",
]


def _select_masked(values, mask, out):
    """out[r, c] = values[r, c] if mask[r, c] != 0 else 0, one row per prange iteration.
    ``out`` may be ``values`` itself (masking in place)."""
    for row in prange(values.shape[0]):
        for col in range(values.shape[1]):
            out[row, col] = values[row, col] if mask[row, col] != 0 else 0.0


select_masked_cpu = njit(parallel=True, cache=True)(_select_masked)


def _masked_linear_forward(x, weight, mask):
    """Y (batch, out) = X (batch, in) @ (W * M).T, with W, M (out, in)."""
    masked_weight = np.empty_like(weight)
    select_masked_cpu(weight, mask, masked_weight)
    return np.dot(x, masked_weight.T)


def _masked_linear_backward(grad_out, x, weight, mask):
    """dX (batch, in) = dY @ (W * M);  dW (out, in) = (dY.T @ X) * M."""
    masked_weight = np.empty_like(weight)
    select_masked_cpu(weight, mask, masked_weight)
    grad_x = np.dot(grad_out, masked_weight)
    grad_weight = np.dot(grad_out.T, x)
    select_masked_cpu(grad_weight, mask, grad_weight)
    return grad_x, grad_weight


def _masked_sgd_momentum(weight, velocity, grad, mask, lr, momentum, weight_decay, l1):
    """One fused, in-place pass over flat (1-D) arrays; every element independent:

    g = grad + weight_decay * w + l1 * sign(w);  v = momentum * v + g;  w -= lr * v
    and where mask == 0: w = 0, v = 0 (so momentum cannot revive a pruned weight).
    The body is branch-free (the mask and sign(w) become selects), so LLVM vectorises it.
    """
    zero = weight.dtype.type(0.0)
    one = weight.dtype.type(1.0)
    for i in prange(weight.shape[0]):
        keep = mask[i] != 0
        w = weight[i]
        sign = (one if w > zero else zero) - (one if w < zero else zero)
        v = momentum * velocity[i] + (grad[i] + weight_decay * w + l1 * sign)
        velocity[i] = v if keep else zero
        weight[i] = (w - lr * v) if keep else zero


masked_linear_forward_cpu = njit(cache=True)(_masked_linear_forward)
masked_linear_backward_cpu = njit(cache=True)(_masked_linear_backward)
# One thread on purpose: the update runs between BLAS calls in training, and a parallel Numba
# region beside BLAS's spinning workers waits on descheduled threads (measured: 6x slower
# epochs on 2 cores, benchmarks/train_speed.py).
masked_sgd_momentum_cpu = njit(cache=True)(_masked_sgd_momentum)
