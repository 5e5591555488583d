"""Which weights can be pruned, and the bookkeeping of their masks.

A *prunable* weight is the ``weight`` of a ``Linear`` or ``Conv2d`` layer; it is named by its dotted
parameter name (``"fc1.weight"``), the names the paper's tables use. Masks only ever lose ones:
``set_mask`` refuses a mask of the wrong shape and ``prune_below`` keeps what was pruned pruned
(Han et al. Sec. 3: pruned connections are removed for good).
"""

from __future__ import annotations

import numpy as np

from minprune.nn.layers import Conv2d, Linear

__all__ = [
    "layers_by_weight_name",
    "resolve_per_layer",
    "set_mask",
    "prune_below",
    "sparsity",
    "density",
    "layer_density",
    "is_pruned",
    "remove",
]


def layers_by_weight_name(model) -> dict:
    """``{"fc1.weight": layer, ...}`` for every Linear and Conv2d in ``model``, in order.

    Raises ValueError when there are none: pruning such a model is always a mistake.
    """
    layers = {
        f"{name}.weight" if name else "weight": module
        for name, module in model.named_modules()
        if isinstance(module, Linear | Conv2d)
    }
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no prunable layers (Linear or Conv2d weights)"
        )
    return layers


def resolve_per_layer(config, names, what: str, check=None) -> dict:
    """Expand a per-layer setting into ``{name: value}`` for every name in ``names``.

    ``config`` is one number for every layer, or a dict keyed by weight name with an optional
    ``'*'`` default (``{"fc1.weight": 1.3, "*": 1.0}``), as in Distiller's pruners. A key that names
    no layer, or a layer with neither its own key nor a ``'*'``, is a ValueError; so is any value
    that ``check(value)`` rejects (it returns an error string or None). Nothing is changed here:
    callers resolve before they touch a mask.
    """
    names = list(names)
    if not isinstance(config, dict):
        config = {"*": config}
    unknown = [key for key in config if key != "*" and key not in names]
    if unknown:
        raise ValueError(f"{what}: {unknown[0]!r} names no prunable layer; expected one of "
                         f"{names} or '*'")
    resolved = {}
    for name in names:
        if name in config:
            value = config[name]
        elif "*" in config:
            value = config["*"]
        else:
            raise ValueError(f"{what}: no value for {name!r} and no '*' default")
        problem = check(value) if check else None
        if problem:
            raise ValueError(f"{what} for {name!r}: {problem}")
        resolved[name] = value
    return resolved


def set_mask(layer, mask) -> None:
    """Install ``mask`` (1 keeps, 0 prunes) and zero the weights it prunes."""
    mask = np.asarray(mask)
    if mask.shape != layer.weight.shape:
        raise ValueError(
            f"mask for {type(layer).__name__} '{layer.name}' has shape {mask.shape}, "
            f"the weight has shape {layer.weight.shape}"
        )
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError(f"mask for '{layer.name}' must hold only 0 and 1")
    layer.weight_mask = mask.astype(np.float32)
    layer.weight.data *= layer.weight_mask


def prune_below(layer, threshold: float) -> None:
    """Prune every surviving weight with ``|w| < threshold`` (the paper's rule, Sec. 3)."""
    keep = (np.abs(layer.weight.data) >= threshold) & (layer.weight_mask != 0)
    set_mask(layer, keep)


def layer_density(layer) -> float:
    """Fraction of the layer's connections that are kept."""
    return float(np.count_nonzero(layer.weight_mask)) / layer.weight_mask.size


def density(model) -> float:
    """Fraction of all prunable weights that are kept (biases are not counted)."""
    layers = layers_by_weight_name(model).values()
    kept = sum(np.count_nonzero(layer.weight_mask) for layer in layers)
    return kept / sum(layer.weight_mask.size for layer in layers)


def sparsity(model) -> float:
    """Fraction of all prunable weights that are pruned: ``1 - density(model)``."""
    return 1.0 - density(model)


def is_pruned(model) -> bool:
    """True when any mask prunes something. (PyTorch: whether a mask exists; minprune's layers
    always carry one, all ones until pruned.)"""
    return any(np.any(layer.weight_mask == 0) for layer in layers_by_weight_name(model).values())


def remove(model) -> None:
    """Make pruning permanent, as ``torch.nn.utils.prune.remove``: bake the masks into the weights
    and reset every mask to ones. Afterwards nothing stops training from reviving those weights;
    keep the masks instead if you will retrain."""
    for layer in layers_by_weight_name(model).values():
        layer.weight.data *= layer.weight_mask
        layer.weight_mask = np.ones_like(layer.weight_mask)
