"""SGD with momentum, L2 weight decay or L1 regularisation, and masks that hold.

The update, for each parameter ``w`` with gradient ``g`` (PyTorch's form of momentum)::

    g <- g + weight_decay * w + l1 * sign(w)      (L2 and/or L1, compared in Sec. 3.1)
    v <- momentum * v + g
    w <- w - lr * v
    w <- w * mask,  v <- v * mask                 (for parameters with a mask: ``w.mask``)

The last line keeps pruned connections dead: without it momentum and weight decay revive them
(Han et al. 2015, Sec. 3). Departure: Caffe, which the paper used, folds the learning rate into
the velocity (v <- m v + lr g; w <- w - v); the two agree while the learning rate is constant.
"""

from __future__ import annotations

import numpy as np

from minprune.kernels.masked_sgd import masked_sgd_momentum_update

__all__ = ["SGD"]


class SGD:
    def __init__(
        self,
        parameters,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        l1: float = 0.0,
    ):
        self.parameters = [p for p in parameters if p.requires_grad]
        if not self.parameters:
            raise ValueError("SGD: got no parameters that require grad")
        for name, value in (("lr", lr), ("weight_decay", weight_decay), ("l1", l1)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"SGD: {name} must be a finite number >= 0, got {value}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.lr, self.momentum = lr, momentum
        self.weight_decay, self.l1 = weight_decay, l1
        self.velocities = [np.zeros_like(p.data) for p in self.parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for parameter, velocity in zip(self.parameters, self.velocities, strict=True):
            if parameter.grad is None:
                continue
            weight, grad = parameter.data, parameter.grad
            if parameter.mask is not None and weight.dtype == np.float32:
                # The same update fused into one pass over memory (a Numba kernel).
                masked_sgd_momentum_update(
                    weight, velocity, np.ascontiguousarray(grad, dtype=np.float32),
                    parameter.mask, lr=self.lr, momentum=self.momentum,
                    weight_decay=self.weight_decay, l1=self.l1,
                )
                continue
            if self.weight_decay:
                grad = grad + self.weight_decay * weight
            if self.l1:
                grad = grad + self.l1 * np.sign(weight)
            velocity *= self.momentum
            velocity += grad
            weight -= self.lr * velocity
            if parameter.mask is not None:
                weight *= parameter.mask
                velocity *= parameter.mask

    def apply_masks(self) -> None:
        """Zero the weights and velocities that masks prune (call after changing a mask)."""
        for parameter, velocity in zip(self.parameters, self.velocities, strict=True):
            if parameter.mask is not None:
                parameter.data *= parameter.mask
                velocity *= parameter.mask

    def state_dict(self) -> dict:
        state = {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocities)}
        state["lr"] = np.float64(self.lr)
        return state

    def load_state_dict(self, state: dict) -> None:
        for i, velocity in enumerate(self.velocities):
            key = f"velocity.{i}"
            if key not in state or np.shape(state[key]) != velocity.shape:
                raise ValueError(
                    f"SGD.load_state_dict: '{key}' missing or of shape {np.shape(state.get(key))},"
                    f" expected {velocity.shape}"
                )
        for i, velocity in enumerate(self.velocities):
            np.copyto(velocity, state[f"velocity.{i}"])
        self.lr = float(state["lr"])
