"""``Module`` and ``Parameter``: the bookkeeping every layer shares.

A module finds its parameters and child modules by the attribute names they were given, so dotted
names (``fc1.weight``) match the paper's tables. A pruned weight's mask lives in one place, on
its ``Parameter`` (``fc1.weight.mask``), and is saved beside it in ``state_dict`` as
``fc1.weight_mask``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minprune.tensor import Tensor

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A tensor that a module trains (``requires_grad`` is on), optionally with a pruning ``mask``.

    ``mask`` is None (never pruned: biases) or a read-only float32 array of the parameter's shape,
    1 where a connection is kept and 0 where it is pruned. The layer's forward uses
    ``weight * mask`` and the optimiser zeroes the weight and its momentum where the mask is 0
    (Han et al. 2015, Sec. 3: pruned connections stay removed). A mask is changed only by
    assigning a new one, which is copied and frozen: an in-place edit raises instead of slipping
    past the caches built from it (the sparse retraining pattern, `minprune.ops.sparse_linear`).
    """

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)
        self._mask = None

    @property
    def mask(self):
        return self._mask

    @mask.setter
    def mask(self, mask) -> None:
        if mask is None:
            self._mask = None
            return
        frozen = np.array(mask, dtype=np.float32)  # a copy: the caller's array stays theirs
        if frozen.shape != self.shape:
            raise ValueError(
                f"mask: expected an array of the parameter's shape {self.shape}, "
                f"got {frozen.shape}"
            )
        if not np.isin(frozen, (0.0, 1.0)).all():
            raise ValueError("mask: expected only 0 (pruned) and 1 (kept)")
        frozen.flags.writeable = False
        self._mask = frozen

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models, in PyTorch's vocabulary."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "name", self.__class__.__name__)

    # ---- registration ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning")
        # Replacing an entry keeps its place (a Sequential runs its layers in this order).
        if not isinstance(value, Parameter):
            self._parameters.pop(name, None)
        if not isinstance(value, Module):
            self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            value.name = name
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # ---- traversal ------------------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        """Yield ``(dotted_name, module)`` for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [module for _, module in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self, prefix: str = ""):
        """Yield ``(dotted_name, parameter)``, e.g. ``("fc1.weight", Parameter(...))``."""
        for module_name, module in self.named_modules(prefix):
            for name, parameter in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self):
        return [parameter for _, parameter in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        """Yield ``(name, mask)`` for every masked parameter: ``("fc1.weight_mask", array)``."""
        for name, parameter in self.named_parameters(prefix):
            if parameter.mask is not None:
                yield f"{name}_mask", parameter.mask

    # ---- modes and gradients --------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad = None

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Copies of every parameter and buffer array, by dotted name."""
        state = OrderedDict()
        for name, parameter in self.named_parameters():
            state[name] = parameter.data.copy()
        for name, buffer in self.named_buffers():
            state[name] = np.array(buffer, copy=True)
        return state

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy ``state`` into this module: parameter values in place (the optimiser keeps its
        references), masks as new frozen arrays.

        Every shape is checked before anything is written, so a mismatch changes nothing. With
        ``strict``, missing and unexpected keys are errors too.
        """
        parameters = dict(self.named_parameters())
        masks = {f"{name}_mask": p for name, p in parameters.items() if p.mask is not None}
        shapes = {name: p.shape for name, p in parameters.items()}
        shapes |= {name: p.shape for name, p in masks.items()}
        missing = [name for name in shapes if name not in state]
        unexpected = [name for name in state if name not in shapes]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, shape in shapes.items():
            if name in state and np.shape(state[name]) != shape:
                raise ValueError(
                    f"load_state_dict: '{name}' has shape {np.shape(state[name])}, "
                    f"the module expects {shape}"
                )
        for name, parameter in parameters.items():
            if name in state:
                np.copyto(parameter.data, state[name], casting="same_kind")
        for name, parameter in masks.items():
            if name in state:
                parameter.mask = state[name]

    # ---- calling --------------------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs):
        return self.forward(*inputs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_lines = repr(child).splitlines()
            lines.append(f"  ({name}): " + "\n  ".join(child_lines))
        lines.append(")")
        return "\n".join(lines)
