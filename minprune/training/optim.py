"""SGD with momentum, L2 weight decay or L1 regularisation, and masks that hold.

The update, for each parameter ``w`` with gradient ``g`` (PyTorch's form of momentum)::

    g <- g + weight_decay * w + l1 * sign(w)      (L2 and/or L1, compared in Sec. 3.1)
    v <- momentum * v + g
    w <- w - lr * v
    w <- w * mask,  v <- v * mask                 (for parameters with a mask: ``w.mask``)

The last line keeps pruned connections dead: without it momentum and weight decay revive them
(Han et al. 2015, Sec. 3). Departure: Caffe, which the paper used, folds the learning rate into
the velocity (v <- m v + lr g; w <- w - v); the two agree while the learning rate is constant.

The update is `minprune.autograd.plain.masked_sgd_update`, those lines as array expressions. With
the "fast" backend (the default; `minprune.autograd.backend.masked_sgd_update_for`) a masked
float32 weight takes the same update fused into one Numba kernel: on the CPU, or its CUDA twin
(`minprune.kernels.training.masked_sgd_cuda`, given the CuPy arrays through
``__cuda_array_interface__``, no copies) for a model on the GPU.

Devices: each velocity lives beside its parameter. The optimiser may be built before or after
``model.to(device)``: a velocity found on another device than its parameter is moved there at
the next `step` (or `apply_masks`, `load_state_dict`). `state_dict` gives host (NumPy) copies.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from minprune.autograd.backend import masked_sgd_update_for
from minprune.base.arrays import array_module, device_of, shape_of, to_device
from minprune.base.settings import backend

__all__ = ["SGD"]


def _finite_number(value) -> bool:
    """A real, finite number (not a bool, not a string)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


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
            if not _finite_number(value) or value < 0:
                raise ValueError(f"SGD: {name} must be a finite number >= 0, got {value!r}")
        if not _finite_number(momentum) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum!r}")
        self.lr, self.momentum = lr, momentum
        self.weight_decay, self.l1 = weight_decay, l1
        self.velocities = [array_module(p.data).zeros_like(p.data) for p in self.parameters]
        # Per parameter, the update chosen for it and what it was chosen for (see `_update_of`).
        self._updates: list[tuple | None] = [None] * len(self.parameters)

    def _velocities(self):
        """(parameter, velocity) pairs, each velocity first moved to its parameter's device if
        the model has moved since (``model.to``)."""
        for index, parameter in enumerate(self.parameters):
            device = device_of(parameter.data)
            if device_of(self.velocities[index]) != device:
                self.velocities[index] = to_device(self.velocities[index], device)
            yield parameter, self.velocities[index]

    def _update_of(self, index, parameter):
        """The backend's update for this parameter, chosen once and again only when the backend,
        the device or the mask's presence has changed (the fused kernel checks its arrays once)."""
        reason = (backend(), parameter.device, parameter.mask is None)
        chosen = self._updates[index]
        if chosen is None or chosen[0] != reason:
            update = masked_sgd_update_for(parameter.data, parameter.mask)
            chosen = self._updates[index] = (reason, update)
        return chosen[1]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for index, (parameter, velocity) in enumerate(self._velocities()):
            if parameter.grad is None:
                continue
            update = self._update_of(index, parameter)
            update(
                parameter.data, velocity, parameter.grad, parameter.mask, lr=self.lr,
                momentum=self.momentum, weight_decay=self.weight_decay, l1=self.l1,
            )

    def apply_masks(self) -> None:
        """Zero the weights and velocities that masks prune (call after changing a mask)."""
        for parameter, velocity in self._velocities():
            if parameter.mask is not None:
                parameter.data *= parameter.mask
                velocity *= parameter.mask

    def state_dict(self) -> dict:
        """Host (NumPy) copies of the velocities, and the learning rate."""
        state = {
            f"velocity.{i}": to_device(velocity, "cpu").copy()
            for i, velocity in enumerate(self.velocities)
        }
        state["lr"] = np.float64(self.lr)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state``'s velocities in place, onto their parameters' device; all shapes are
        checked first, so a mismatch changes nothing."""
        velocities = list(self._velocities())
        for i, (_, velocity) in enumerate(velocities):
            key = f"velocity.{i}"
            shape = None if key not in state else shape_of(state[key])
            if shape != velocity.shape:
                raise ValueError(
                    f"SGD.load_state_dict: '{key}' missing or of shape {shape},"
                    f" expected {velocity.shape}"
                )
        for i, (_, velocity) in enumerate(velocities):
            source = to_device(state[f"velocity.{i}"], device_of(velocity))
            array_module(velocity).copyto(velocity, source)
        self.lr = float(state["lr"])
