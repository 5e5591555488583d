"""``Module`` and ``Parameter``: the bookkeeping every layer shares.

A module holds parameters (trainable tensors), buffers (plain arrays that are state but not trained,
such as a ``weight_mask``) and child modules, and finds them by the attribute names they were given,
so their dotted names (``fc1.weight``) match the paper's tables. ``state_dict`` copies every
parameter and buffer; ``load_state_dict`` copies values back *in place*, so anything that holds a
reference to a parameter's array (the optimiser) stays valid.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minprune.tensor import Tensor

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A tensor that a module trains (``requires_grad`` is on).

    ``mask`` is ``None``, or the owning layer's ``weight_mask`` array (the same object): the
    optimiser multiplies both the weight and its momentum by it after every step, so pruned
    connections stay exactly zero.
    """

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)
        self.mask = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models, in PyTorch's vocabulary."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_buffer_versions", {})
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "name", self.__class__.__name__)

    # ---- registration ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning")
        if name in self._buffers:
            self._assign_buffer(name, value)
            return
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

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` as state (saved in ``state_dict``) that the optimiser does not train."""
        self._buffers[name] = array
        self._buffer_versions[name] = 0
        object.__setattr__(self, name, array)

    def buffer_version(self, name: str) -> int:
        """How many times buffer ``name`` has been assigned or loaded (``load_state_dict``): a
        cache built from a buffer (the sparse training pattern of a mask) compares it to notice a
        change. Writes into the array itself (``layer.weight_mask[0, 0] = 0``) are not counted."""
        return self._buffer_versions[name]

    def _assign_buffer(self, name, value) -> None:
        """Assigning to a buffer copies *into* it, so every reference to it (the optimiser's link
        from a weight to its mask) stays valid; a different shape is refused before any change."""
        buffer = self._buffers[name]
        if np.shape(value) != buffer.shape:
            raise ValueError(
                f"{self.name}.{name}: expected an array of shape {buffer.shape}, "
                f"got {np.shape(value)}"
            )
        np.copyto(buffer, value, casting="same_kind")
        self._buffer_versions[name] += 1

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
        for module_name, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), buffer

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
        """Copy ``state`` into this module's arrays in place.

        Every shape is checked before anything is written, so a mismatch changes nothing. With
        ``strict``, missing and unexpected keys are errors too.
        """
        targets = dict(self.named_parameters())
        targets = {name: p.data for name, p in targets.items()} | dict(self.named_buffers())
        missing = [name for name in targets if name not in state]
        unexpected = [name for name in state if name not in targets]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, target in targets.items():
            if name in state and np.shape(state[name]) != target.shape:
                raise ValueError(
                    f"load_state_dict: '{name}' has shape {np.shape(state[name])}, "
                    f"the module expects {target.shape}"
                )
        for name, target in targets.items():
            if name in state:
                np.copyto(target, state[name], casting="same_kind")
        for module_name, module in self.named_modules():
            for name in module._buffers:
                if (f"{module_name}.{name}" if module_name else name) in state:
                    module._buffer_versions[name] += 1

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
