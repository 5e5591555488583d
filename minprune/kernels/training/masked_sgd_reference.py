"""The slow, obviously correct twin of the masked SGD-momentum kernels (CPU and CUDA): one
element at a time, in float32 and in the kernels' order of operations.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "masked_sgd_momentum_reference",
]


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
