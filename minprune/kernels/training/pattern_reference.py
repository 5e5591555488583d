"""The slow, obviously correct twins of the sparse-linear training kernels (`sparse_linear`):
the masked dense products in float64. The autograd op runs them for float64 inputs, so the op's
wiring is gradient-checked through them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["reference_forward", "reference_backward"]


def reference_forward(mask, x, weight, bias):
    """NumPy twin of `sparse_linear_forward` (float64 products, returns float64)."""
    masked = np.where(mask != 0, weight, 0.0).astype(np.float64)
    out = x.astype(np.float64) @ masked.T
    return out if bias is None else out + bias


def reference_backward(mask, x, weight, grad_y):
    """NumPy twin of `sparse_linear_backward`: (grad_x, grad_weight, grad_bias) in float64."""
    keep = mask != 0
    masked = np.where(keep, weight, 0.0).astype(np.float64)
    grad_y = grad_y.astype(np.float64)
    grad_weight = np.where(keep, grad_y.T @ x.astype(np.float64), 0.0)
    return grad_y @ masked, grad_weight, grad_y.sum(axis=0)
