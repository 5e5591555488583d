"""Rebuild a layer smaller: remove output channels (Conv2d) or neurons (Linear) and the matching
inputs of the next weighted layer (Li et al. 2017, "Pruning Filters for Efficient ConvNets",
Sec. 3.1).

Li et al.: "pruning a filter results in removal of its corresponding feature map", and "the kernels
that apply on the removed feature maps from the filters of the next convolutional layer are also
removed". Here the layer A that loses outputs and the next weighted layer B are found among the
direct children of a ``Sequential`` -- ``A -> (ReLU | Dropout | MaxPool2d)* -> [Flatten ->] B`` --
and both are replaced by new, smaller modules holding the kept weights, masks and biases:

- Conv2d A -> Conv2d B: B loses input channels (its weight's axis 1);
- Linear A -> Linear B: B loses input columns;
- Conv2d A -> Flatten -> Linear B (LeNet-5's conv2 -> fc1): channel c of A feeds B's columns
  c*H*W .. (c+1)*H*W - 1 (Flatten's (C, H, W) order); each removed channel removes that block.
  H*W is ``B.in_features / A.out_channels``.

Where this departs from Li et al.: a removed output is not simply dropped. With its filter gone the
channel would still output a constant -- ``act(bias)`` after the ReLU, pooling leaves a constant
map as it is -- and that constant is folded into B's bias (as `minprune.prune.dead_neurons` does
for dead neurons), so the rebuilt model computes exactly what the model with the removed filters
masked to zero computed (up to float32 summation order). A Conv2d B with padding sees that
constant map padded with zeros, which no bias can reproduce: there a non-zero constant is refused
unless ``fold_constants=False`` (then it is dropped, as Li et al. do). The global random generator
is not advanced; build a new optimiser afterwards.
"""

from __future__ import annotations

import numpy as np

import minprune.base.random as minprune_random
from minprune.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.prune.dead_neurons import _replace, _smaller_linear

__all__ = ["remove_outputs", "next_weighted_layer"]

_PASS_THROUGH = (Dropout, MaxPool2d)  # constant maps stay constant, channels stay apart


def _resolve(model, layer: str) -> str:
    """The child name for ``"conv2"`` or ``"conv2.weight"``; ValueError naming the choices."""
    if not isinstance(model, Sequential):
        raise ValueError(f"structured pruning works on a Sequential model (its direct children), "
                         f"got {type(model).__name__}")
    name = layer.removesuffix(".weight") if isinstance(layer, str) else layer
    weighted = [key for key, child in model._modules.items()
                if isinstance(child, Linear | Conv2d)]
    if name not in weighted:
        raise ValueError(f"{layer!r} names no Linear or Conv2d child of the model; expected one "
                         f"of {weighted}")
    return name


def next_weighted_layer(model, layer: str) -> tuple[str, bool, bool]:
    """``(name_b, has_relu, flattened)``: the weighted layer that reads ``layer``'s outputs,
    whether a ReLU and a Flatten lie between. Raises ValueError for what cannot be rebuilt: the
    output layer (its outputs are the classes), grouped convolutions, and any other module in
    between (e.g. LocalResponseNorm, which mixes channels)."""
    name_a = _resolve(model, layer)
    children = list(model._modules.items())
    names = [name for name, _ in children]
    module_a = model._modules[name_a]
    has_relu = flattened = False
    for name_b, module_b in children[names.index(name_a) + 1:]:
        if isinstance(module_b, ReLU):
            has_relu = True
        elif isinstance(module_b, Flatten) and isinstance(module_a, Conv2d) and not flattened:
            flattened = True
        elif isinstance(module_b, _PASS_THROUGH) and not flattened:
            continue
        elif isinstance(module_b, Dropout):
            continue
        elif isinstance(module_b, Linear) and (isinstance(module_a, Conv2d) == flattened):
            return name_b, has_relu, flattened
        elif isinstance(module_b, Conv2d) and isinstance(module_a, Conv2d) and not flattened:
            if module_a.groups != 1 or module_b.groups != 1:
                raise ValueError(f"'{name_a}' -> '{name_b}': grouped convolutions are not "
                                 f"rebuilt (groups {module_a.groups}, {module_b.groups})")
            return name_b, has_relu, flattened
        else:
            raise ValueError(f"'{name_a}' feeds {type(module_b).__name__} '{name_b}', which "
                             "structured pruning cannot carry the removed channels through")
    raise ValueError(f"'{name_a}' is the model's output layer: removing its outputs would remove "
                     "classes; only layers that feed another weighted layer lose outputs")


def _smaller_conv(old: Conv2d, out_channels, in_channels) -> Conv2d:
    """A new Conv2d holding ``old``'s weight, mask and bias at those channels."""
    state = minprune_random.get_rng_state()
    try:
        new = Conv2d(len(in_channels), len(out_channels), old.kernel_size, old.stride,
                     old.padding, bias=old.bias is not None)
    finally:
        minprune_random.set_rng_state(state)
    new.weight.data[...] = old.weight.data[np.ix_(out_channels, in_channels)]
    new.weight_mask = old.weight_mask[np.ix_(out_channels, in_channels)]
    if old.bias is not None:
        new.bias.data[...] = old.bias.data[out_channels]
    new.train(old.training)
    return new


def _inputs_of_b(layer_a, layer_b, flattened: bool) -> tuple[int, int]:
    """``(outputs of A, B's inputs per output of A)``: H*W after a Flatten, else 1."""
    outputs = layer_a.out_channels if isinstance(layer_a, Conv2d) else layer_a.out_features
    inputs = layer_b.in_features if isinstance(layer_b, Linear) else layer_b.in_channels
    if inputs % outputs or (not flattened and inputs != outputs):
        raise ValueError(f"'{layer_a.name}' has {outputs} outputs but '{layer_b.name}' reads "
                         f"{inputs} inputs; expected {outputs}"
                         + (" x H*W" if flattened else ""))
    return outputs, inputs // outputs


def _folded_bias(layer_a, layer_b, removed, has_relu, block, fold_constants) -> np.ndarray | None:
    """B's bias with the removed outputs' constants act(bias_A) folded in (None: B unchanged)."""
    if layer_a.bias is None or not removed.size:
        return None
    constant = layer_a.bias.data[removed].astype(np.float64)
    if has_relu:
        constant = np.maximum(constant, 0.0)
    if not np.any(constant) or not fold_constants:
        return None
    if isinstance(layer_b, Conv2d) and layer_b.padding:
        raise ValueError(f"'{layer_b.name}' pads its input, so the constant maps of the removed "
                         f"channels of '{layer_a.name}' cannot be folded into its bias; pass "
                         "fold_constants=False to drop them (Li et al.'s removal)")
    if layer_b.bias is None:
        raise ValueError(f"'{layer_b.name}' has no bias to fold the removed outputs' constants "
                         "into; pass fold_constants=False to drop them")
    weight_b = layer_b.weight.data.astype(np.float64) * layer_b.weight_mask
    if isinstance(layer_b, Conv2d):
        per_channel = weight_b.sum(axis=(2, 3))[:, removed]  # a constant map, no padding
    else:
        columns = (removed[:, None] * block + np.arange(block)).ravel()
        per_channel = weight_b[:, columns].reshape(len(weight_b), len(removed), block).sum(2)
    return (layer_b.bias.data + per_channel @ constant).astype(layer_b.bias.data.dtype)


def remove_outputs(model, layer: str, remove, *, fold_constants: bool = True) -> dict:
    """Remove the outputs ``remove`` (indices of channels of a Conv2d, neurons of a Linear) of
    ``layer`` (``"conv2"`` or ``"conv2.weight"``) and the inputs of the next weighted layer that
    read them; both layers are rebuilt smaller in place, their kept weights and masks kept. See
    the module docstring. Returns ``{"layer", "next", "removed", "outputs": (before, after)}``.

    Refused (ValueError, before anything changes): an index out of range or repeated, removing
    every output, a layer that cannot be rebuilt (`next_weighted_layer`)."""
    name_a = _resolve(model, layer)
    name_b, has_relu, flattened = next_weighted_layer(model, name_a)
    layer_a, layer_b = model._modules[name_a], model._modules[name_b]
    outputs, block = _inputs_of_b(layer_a, layer_b, flattened)
    removed = np.asarray(remove, dtype=np.int64).ravel()
    if removed.size and (removed.min() < 0 or removed.max() >= outputs):
        raise ValueError(f"'{name_a}': output indices must be in 0..{outputs - 1}, got "
                         f"{removed.min()}..{removed.max()}")
    if len(np.unique(removed)) != removed.size:
        raise ValueError(f"'{name_a}': output indices repeat: {sorted(removed.tolist())}")
    if removed.size >= outputs:
        raise ValueError(f"'{name_a}': removing all {outputs} outputs leaves no layer; keep at "
                         "least one")
    removed = np.sort(removed)
    kept = np.setdiff1d(np.arange(outputs), removed)
    bias_b = _folded_bias(layer_a, layer_b, removed, has_relu, block, fold_constants)
    columns = (kept[:, None] * block + np.arange(block)).ravel()
    if isinstance(layer_a, Conv2d):
        new_a = _smaller_conv(layer_a, kept, np.arange(layer_a.in_channels))
    else:
        new_a = _smaller_linear(layer_a, kept, np.arange(layer_a.in_features))
    if isinstance(layer_b, Conv2d):
        new_b = _smaller_conv(layer_b, np.arange(layer_b.out_channels), columns)
    else:
        new_b = _smaller_linear(layer_b, np.arange(layer_b.out_features), columns)
    if bias_b is not None:
        new_b.bias.data[...] = bias_b
    _replace(model, name_a, new_a)
    _replace(model, name_b, new_b)
    return {"layer": name_a, "next": name_b, "removed": removed.tolist(),
            "outputs": (outputs, len(kept))}
