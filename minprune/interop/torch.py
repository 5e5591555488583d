"""minprune <-> PyTorch: ``to_torch(model)`` and ``from_torch(module)``.

A minprune model becomes a ``torch.nn.Sequential`` with the same layer names, so the state_dict keys
match: minprune's ``fc1.weight`` is PyTorch's ``fc1.weight``. A layer that minprune has pruned is
pruned in PyTorch through ``torch.nn.utils.prune.custom_from_mask``, so PyTorch users meet their own
vocabulary: the layer holds ``fc1.weight_orig`` (a parameter) and ``fc1.weight_mask`` (a buffer),
and a forward pre-hook computes ``weight = weight_orig * weight_mask`` before each forward -- the
product minprune's own forward uses (``weight * weight_mask``). ``from_torch`` reads a plain or a
pruned PyTorch model back. Only this module imports torch (``pip install "minprune[torch]"``).

Decisions that keep the conversion exact both ways:

- Which layers are pruned. minprune's Linear and Conv2d always carry a mask, all ones until
  pruned; a PyTorch layer has one only once pruned (``prune.is_pruned``). ``to_torch`` prunes in
  PyTorch exactly the layers whose mask holds a zero; an all-ones mask becomes a plain layer.
  ``from_torch`` gives a plain layer an all-ones mask. So ``from_torch(to_torch(m))`` has ``m``'s
  state, and ``to_torch(from_torch(t))`` has ``t``'s -- except that a PyTorch mask of all ones
  (``amount=0``) comes back as a plain layer.
- The values at pruned positions. minprune's pruning writes zeros there (`minprune.prune.set_mask`);
  PyTorch's keeps the old values in ``weight_orig``. ``from_torch`` copies ``weight_orig`` as it is
  into minprune's ``weight``, so nothing is lost, and the forward is the same in both libraries
  because both multiply by the mask. minprune's SGD zeroes those entries at its first step; to zero
  them at once, ``layer.weight.data *= layer.weight_mask``. ``to_torch`` copies minprune's weight
  into ``weight_orig``, zeros included.
- Numbers are copied as float32, never shared: changing one model leaves the other alone.
  ``to_torch`` builds on the CPU and moves the module to ``device`` when given one; ``from_torch``
  reads from any device. The top module's train/eval mode carries over.

What converts, as these exact classes (a subclass may have its own forward, so it is refused):
``Sequential`` (nested ones too; names kept), ``Linear``, ``Conv2d`` (a square kernel, one stride
and one padding for both axes, ``groups``; no dilation), ``MaxPool2d`` (no padding, no
``ceil_mode``), ``ReLU``, ``Dropout``, ``Flatten`` (PyTorch's default ``start_dim=1, end_dim=-1``)
and ``LocalResponseNorm``. Anything else is a ValueError that names the layer and lists these. A
model class with its own ``forward``, such as torchvision's ``AlexNet`` (``features``, ``avgpool``,
``classifier``), is out of scope as it stands: rebuild it as an ``nn.Sequential`` of its parts
first (README, "Moving to PyTorch").
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn as torch_nn
from torch.nn.utils import prune as torch_prune

import minprune.nn as mp_nn
from minprune.base.random import get_rng_state, set_rng_state

__all__ = ["to_torch", "from_torch"]


SUPPORTED = ("Sequential", "Linear", "Conv2d", "MaxPool2d", "ReLU", "Dropout", "Flatten",
             "LocalResponseNorm")


def _supported() -> str:
    return ", ".join(SUPPORTED)


def _unsupported(direction: str, name: str, layer) -> ValueError:
    where = f"layer {name!r}" if name else "the model itself"
    kind = type(layer)
    return ValueError(f"{direction}: {where} is a {kind.__name__} ({kind.__module__}), which does "
                      f"not convert; supported: {_supported()}")


# ---- minprune -> PyTorch -------------------------------------------------------------------------


def to_torch(model, device=None) -> torch_nn.Module:
    """The minprune ``model`` as a ``torch.nn`` module, layer names and masks kept.

    A ``Sequential`` becomes a ``torch.nn.Sequential`` built from an ``OrderedDict`` of the same
    names. A Linear or Conv2d whose ``weight_mask`` prunes something gets
    ``torch.nn.utils.prune.custom_from_mask(layer, "weight", mask)``: its state_dict holds
    ``weight_orig`` (minprune's ``weight``) and ``weight_mask``. ``device`` (e.g. ``"cuda:0"``)
    moves the result there; by default it stays on the CPU.
    """
    module = _to_torch(model, "")
    module.train(model.training)
    if device is not None:
        module.to(device)
    return module


def _to_torch(layer, name: str) -> torch_nn.Module:
    kind = type(layer)
    if kind is mp_nn.Sequential:
        children = OrderedDict(
            (child.name, _to_torch(child, f"{name}.{child.name}" if name else child.name))
            for child in layer
        )
        return torch_nn.Sequential(children)
    if kind is mp_nn.Linear:
        module = torch_nn.utils.skip_init(
            torch_nn.Linear, layer.in_features, layer.out_features, bias=layer.bias is not None
        )
        return _copy_weights_to_torch(layer, module)
    if kind is mp_nn.Conv2d:
        module = torch_nn.utils.skip_init(
            torch_nn.Conv2d, layer.in_channels, layer.out_channels, layer.kernel_size,
            stride=layer.stride, padding=layer.padding, groups=layer.groups,
            bias=layer.bias is not None,
        )
        return _copy_weights_to_torch(layer, module)
    if kind is mp_nn.MaxPool2d:
        return torch_nn.MaxPool2d(layer.kernel_size, stride=layer.stride)
    if kind is mp_nn.ReLU:
        return torch_nn.ReLU()
    if kind is mp_nn.Dropout:
        return torch_nn.Dropout(layer.p)
    if kind is mp_nn.Flatten:
        return torch_nn.Flatten()
    if kind is mp_nn.LocalResponseNorm:
        return torch_nn.LocalResponseNorm(layer.size, alpha=layer.alpha, beta=layer.beta,
                                          k=layer.k)
    raise _unsupported("to_torch", name, layer)


def _copy_weights_to_torch(layer, module: torch_nn.Module) -> torch_nn.Module:
    with torch.no_grad():
        module.weight.copy_(_tensor(layer.weight.data))
        if layer.bias is not None:
            module.bias.copy_(_tensor(layer.bias.data))
    mask = layer.weight_mask
    if mask is not None and not mask.all():
        torch_prune.custom_from_mask(module, "weight", _tensor(mask))
    return module


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))  # a copy, writable


# ---- PyTorch -> minprune -------------------------------------------------------------------------


def from_torch(module: torch_nn.Module):
    """The PyTorch ``module`` as a minprune model: a ``Sequential`` with the same layer names.

    A layer pruned with ``torch.nn.utils.prune`` (``weight_orig`` and ``weight_mask``) arrives
    with ``weight = weight_orig`` and ``weight_mask`` as its mask; a plain layer with an all-ones
    mask. Flat or nested ``torch.nn.Sequential`` and the layer types in the module docstring only.
    minprune's random generator is left as it was (the new layers' initial weights, drawn from it
    and then overwritten, do not count as draws).
    """
    state = get_rng_state()
    try:
        model = _from_torch(module, "")
    finally:
        set_rng_state(state)
    model.train(module.training)
    return model


def _from_torch(module: torch_nn.Module, name: str):
    kind = type(module)
    if kind is torch_nn.Sequential:
        children = OrderedDict(
            (child_name, _from_torch(child, f"{name}.{child_name}" if name else child_name))
            for child_name, child in module.named_children()
        )
        return mp_nn.Sequential(children)
    if kind is torch_nn.Linear:
        layer = mp_nn.Linear(module.in_features, module.out_features,
                             bias=module.bias is not None)
        return _copy_weights_from_torch(module, layer, name)
    if kind is torch_nn.Conv2d:
        return _conv2d_from_torch(module, name)
    if kind is torch_nn.MaxPool2d:
        return _max_pool2d_from_torch(module, name)
    if kind is torch_nn.ReLU:
        return mp_nn.ReLU()
    if kind is torch_nn.Dropout:
        if not 0.0 <= module.p < 1.0:
            raise ValueError(f"from_torch: Dropout {name!r} has p={module.p}; minprune's Dropout "
                             "takes p in [0, 1)")
        return mp_nn.Dropout(module.p)
    if kind is torch_nn.Flatten:
        if (module.start_dim, module.end_dim) != (1, -1):
            raise ValueError(
                f"from_torch: Flatten {name!r} has start_dim={module.start_dim}, end_dim="
                f"{module.end_dim}; minprune's Flatten is start_dim=1, end_dim=-1 only"
            )
        return mp_nn.Flatten()
    if kind is torch_nn.LocalResponseNorm:
        return mp_nn.LocalResponseNorm(size=module.size, alpha=module.alpha, beta=module.beta,
                                   k=module.k)
    raise _unsupported("from_torch", name, module)


def _one_value(name: str, what: str, value) -> int:
    """PyTorch keeps kernel sizes, strides and paddings as pairs; minprune as one int."""
    values = set(value) if isinstance(value, tuple | list) else {value}
    if len(values) != 1 or not isinstance(next(iter(values)), int):
        raise ValueError(f"from_torch: layer {name!r} has {what}={value!r}; minprune expects "
                         "one int for both axes")
    return values.pop()


def _conv2d_from_torch(module: torch_nn.Conv2d, name: str):
    kernel_size = _one_value(name, "kernel_size", module.kernel_size)
    stride = _one_value(name, "stride", module.stride)
    padding = _one_value(name, "padding", module.padding)
    if _one_value(name, "dilation", module.dilation) != 1 or module.padding_mode != "zeros":
        raise ValueError(f"from_torch: Conv2d {name!r} has dilation={module.dilation}, "
                         f"padding_mode={module.padding_mode!r}; minprune expects 1 and 'zeros'")
    layer = mp_nn.Conv2d(module.in_channels, module.out_channels, kernel_size, stride=stride,
                         padding=padding, bias=module.bias is not None, groups=module.groups)
    return _copy_weights_from_torch(module, layer, name)


def _max_pool2d_from_torch(module: torch_nn.MaxPool2d, name: str):
    kernel_size = _one_value(name, "kernel_size", module.kernel_size)
    stride = _one_value(name, "stride", module.stride)
    if (_one_value(name, "padding", module.padding) != 0
            or _one_value(name, "dilation", module.dilation) != 1
            or module.ceil_mode or module.return_indices):
        raise ValueError(
            f"from_torch: MaxPool2d {name!r} has padding={module.padding}, dilation="
            f"{module.dilation}, ceil_mode={module.ceil_mode}, return_indices="
            f"{module.return_indices}; minprune's MaxPool2d is 0, 1, False, False only"
        )
    return mp_nn.MaxPool2d(kernel_size, stride)


def _copy_weights_from_torch(module: torch_nn.Module, layer, name: str):
    """weight (or weight_orig and weight_mask, when pruned in PyTorch) and bias into ``layer``."""
    masks = [key for key, _ in module.named_buffers(recurse=False) if key.endswith("_mask")]
    if masks not in ([], ["weight_mask"]):
        raise ValueError(f"from_torch: layer {name!r} is pruned in PyTorch through {masks}; "
                         "minprune prunes weights only (weight_mask)")
    pruned = masks == ["weight_mask"]
    weight = _array(module.weight_orig if pruned else module.weight)
    if weight.shape != layer.weight.shape:
        raise ValueError(f"from_torch: layer {name!r} has a weight of shape {weight.shape}; "
                         f"minprune's {type(layer).__name__} expects {layer.weight.shape}")
    layer.weight.data[...] = weight
    if module.bias is not None:
        layer.bias.data[...] = _array(module.bias)
    if pruned:
        mask = _array(module.weight_mask)
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError(f"from_torch: layer {name!r} has a weight_mask with values other "
                             "than 0 and 1; minprune's masks keep or prune")
        layer.weight_mask = mask
    return layer


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy().copy()
