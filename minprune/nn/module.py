"""``Module`` and ``Parameter``: the bookkeeping every layer shares.

A module finds its parameters and child modules by the attribute names they were given, so dotted
names (``fc1.weight``) match the paper's tables. A pruned weight's mask lives in one place, on
its ``Parameter`` (``fc1.weight.mask``), and is saved beside it in ``state_dict`` as
``fc1.weight_mask``.

``model.to("cuda")`` moves every parameter's data, gradient and mask to the GPU in place (and
``.to("cpu")`` back); `state_dict` always gives host (NumPy) copies, so checkpoints and
fingerprints read the same on either device, and `load_state_dict` copies onto the parameters'
device.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from minprune.autograd.tensor import Tensor
from minprune.base.arrays import array_module, check_device, device_of, shape_of, to_device

__all__ = ["Module", "Parameter", "copy_model"]


class Parameter(Tensor):
    """A tensor that a module trains (``requires_grad`` is on), optionally with a pruning ``mask``.

    ``mask`` is None (never pruned: biases) or a read-only float32 array of the parameter's shape,
    1 where a connection is kept and 0 where it is pruned. The layer's forward uses
    ``weight * mask`` and the optimiser zeroes the weight and its momentum where the mask is 0
    (Han et al. 2015, Sec. 3: pruned connections stay removed). A mask is changed only by
    assigning a new one, which is copied onto the parameter's device and frozen: an in-place edit
    raises instead of slipping past the caches built from it (the sparse retraining pattern,
    `minprune.autograd.ops.pattern_linear`). On the GPU the copy cannot be frozen (CuPy arrays have
    no read-only flag); no cache is built from a GPU mask, and moving back to the CPU freezes it.
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
        xp = array_module(self.data)
        # A copy on the parameter's device: the caller's array stays theirs.
        frozen = xp.array(to_device(mask, self.device), dtype=xp.float32)
        if frozen.shape != self.shape:
            raise ValueError(
                f"mask: expected an array of the parameter's shape {self.shape}, "
                f"got {frozen.shape}"
            )
        if not ((frozen == 0) | (frozen == 1)).all():
            raise ValueError("mask: expected only 0 (pruned) and 1 (kept)")
        if xp is np:
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

    # ---- devices --------------------------------------------------------------------------------
    def to(self, device: str) -> Module:
        """Move every parameter's data, gradient (if any) and mask to ``device`` ("cpu" or
        "cuda"), in place, and return this module. The `Parameter` objects stay the same, so an
        optimiser built before the move keeps them; its velocities follow at its next step
        (`minprune.training.optim.SGD`). "cuda" needs CuPy and a GPU
        (`minprune.base.arrays.cupy_module`)."""
        check_device(device)
        for parameter in self.parameters():
            parameter.data = to_device(parameter.data, device)
            if parameter.grad is not None:
                parameter.grad = to_device(parameter.grad, device)
            if parameter.mask is not None:
                parameter.mask = parameter.mask  # copied onto the new device (frozen on the CPU)
        return self

    @property
    def device(self) -> str:
        """Where the parameters live ("cpu" or "cuda"): the first parameter's device ("cpu" for a
        module without parameters)."""
        return next((p.device for p in self.parameters()), "cpu")

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Host (NumPy) copies of every parameter and buffer array, by dotted name, whatever the
        device: checkpoints and fingerprints read the same for a model on the GPU."""
        state = OrderedDict()
        for name, parameter in self.named_parameters():
            state[name] = to_device(parameter.data, "cpu").copy()
        for name, buffer in self.named_buffers():
            state[name] = to_device(buffer, "cpu").copy()
        return state

    def load_state_dict(self, state, strict: bool = True, *, unprune: bool = False) -> None:
        """Copy ``state`` (NumPy or CuPy arrays) into this module, onto the parameters' device:
        parameter values in place (the optimiser keeps its references), masks as new frozen arrays.

        Every shape is checked before anything is written, so a mismatch changes nothing. With
        ``strict``, missing and unexpected keys are errors too.

        The masks in ``state`` replace this module's: a state saved before pruning (all-ones
        masks) undoes the pruning. That warns (a UserWarning naming each layer and its density
        before and after) unless ``unprune=True`` says it is meant, as when a sensitivity scan
        restores the model it pruned, or a resumed run restores its own saved masks.
        ``state`` is a mapping (``model.state_dict()``); a checkpoint file is read by
        `minprune.training.checkpoint.load_model_checkpoint`, a sparse file by
        `minprune.sparse.load_model`.
        """
        if isinstance(state, str | bytes | os.PathLike):
            raise TypeError(
                f"load_state_dict: got a path ({os.fsdecode(state)!r}); it takes a state_dict "
                "(a mapping of names to arrays, e.g. model.state_dict()). To load a file, use "
                "minprune.training.checkpoint.load_model_checkpoint(model, path, model_name) "
                "(or load_checkpoint(path), which returns (model_state, optimizer_state, meta)) "
                "for a checkpoint, minprune.sparse.load_model(path) for a sparse file"
            )
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict: expected a mapping of names to arrays (model.state_dict()), "
                f"got {type(state).__name__}"
            )
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
            if name in state and shape_of(state[name]) != shape:
                raise ValueError(
                    f"load_state_dict: '{name}' has shape {shape_of(state[name])}, "
                    f"the module expects {shape}"
                )
        if not unprune:
            _warn_if_unpruning(masks, state)
        for name, parameter in parameters.items():
            if name in state:
                xp = array_module(parameter.data)
                source = to_device(state[name], device_of(parameter.data))
                xp.copyto(parameter.data, source, casting="same_kind")
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


def _warn_if_unpruning(masks: dict, state) -> None:
    """Warn when ``state``'s masks turn on connections that ``masks`` (mask name -> parameter)
    have pruned: say which layers, and their density before and after."""
    changed, kept_before, kept_after, total = [], 0, 0, 0
    for name, parameter in masks.items():
        before = to_device(parameter.mask, "cpu") != 0
        after = to_device(state[name], "cpu") != 0 if name in state else before
        kept_before, kept_after = kept_before + int(before.sum()), kept_after + int(after.sum())
        total += before.size
        if (after & ~before).any():
            changed.append(f"{name.removesuffix('_mask')} (density {before.mean():.1%} -> "
                           f"{after.mean():.1%})")
    if changed:
        warnings.warn(
            f"load_state_dict: the state turns pruned connections back on in "
            f"{', '.join(changed)}; masked weights' density {kept_before / total:.1%} -> "
            f"{kept_after / total:.1%}. Its masks replace the model's, so a state saved before "
            "pruning undoes the pruning. Load a state saved after pruning to keep it, or pass "
            "load_state_dict(state, unprune=True) if restoring the unpruned connections is meant",
            UserWarning,
            stacklevel=3,
        )


def copy_model(model: Module) -> Module:
    """An independent deep copy of ``model``: its layers, weights, gradients, masks (read-only
    again, as `Parameter.mask` keeps them) and train/eval mode, on the same device. Nothing is
    drawn from minprune's global generator, so the runs that follow are as without the copy."""
    copied = copy.deepcopy(model)
    for parameter in copied.parameters():
        if parameter.mask is not None:
            parameter.mask = parameter.mask  # the setter freezes the copy (deepcopy thaws it)
    return copied
