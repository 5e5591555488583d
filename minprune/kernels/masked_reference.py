"""Slow, obviously correct twins of the masked dense kernels (forward, backward, SGD update).

In minprune a pruned layer keeps its dense weight W and a 0/1 mask M of the same shape, and uses
W * M everywhere (Han et al. 2015, Sec. 3: pruned connections are removed and "stay at zero").
Matrix products are computed in float64; the SGD reference uses float32 arithmetic in the same
order as the kernel, element by element.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "masked_linear_forward_reference",
    "masked_linear_backward_reference",
    "masked_sgd_momentum_reference",
]


def _masked(weight, mask) -> np.ndarray:
    return np.where(np.asarray(mask) != 0, np.asarray(weight, dtype=np.float64), 0.0)


def masked_linear_forward_reference(x, weight, mask) -> np.ndarray:
    """Y = X @ (W * M).T, with X (batch, in), W and M (out, in); float64."""
    return np.asarray(x, dtype=np.float64) @ _masked(weight, mask).T


def masked_linear_backward_reference(grad_out, x, weight, mask) -> tuple[np.ndarray, np.ndarray]:
    """(dX, dW) for Y = X @ (W * M).T: dX = dY @ (W * M), dW = (dY.T @ X) * M; float64.

    The mask on dW is what keeps a pruned weight's gradient exactly zero.
    """
    grad_out = np.asarray(grad_out, dtype=np.float64)
    grad_x = grad_out @ _masked(weight, mask)
    grad_weight = np.where(np.asarray(mask) != 0, grad_out.T @ np.asarray(x, dtype=np.float64), 0.0)
    return grad_x, grad_weight


def masked_sgd_momentum_reference(
    weight, velocity, grad, mask, *, lr, momentum, weight_decay=0.0, l1=0.0
) -> tuple[np.ndarray, np.ndarray]:
    """One masked SGD-with-momentum step; returns new (weight, velocity), inputs untouched.

    For each element, in float32:
        g = grad + weight_decay * w + l1 * sign(w)      # L2 and/or L1 regularisation
        v = momentum * v + g
        w = w - lr * v
        if mask == 0: w = 0, v = 0                      # pruned weights stay exactly 0
    """
    f32 = np.float32
    lr, momentum, weight_decay, l1 = f32(lr), f32(momentum), f32(weight_decay), f32(l1)
    new_weight = np.array(weight, dtype=f32, copy=True)
    new_velocity = np.array(velocity, dtype=f32, copy=True)
    flat_weight, flat_velocity = new_weight.reshape(-1), new_velocity.reshape(-1)
    flat_grad, flat_mask = np.asarray(grad).reshape(-1), np.asarray(mask).reshape(-1)
    for i in range(flat_weight.size):
        if flat_mask[i] == 0:
            flat_weight[i] = 0.0
            flat_velocity[i] = 0.0
            continue
        w = flat_weight[i]
        g = flat_grad[i] + weight_decay * w + l1 * np.sign(w)
        v = momentum * flat_velocity[i] + g
        flat_velocity[i] = v
        flat_weight[i] = w - lr * v
    return new_weight, new_velocity
