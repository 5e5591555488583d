"""Remove dead neurons, so that pruning really shrinks the layers (Han et al. 2015, Sec. 3).

The paper: "After pruning connections, neurons with zero input connections or zero output
connections may be safely pruned." Here a hidden neuron ``j`` between two ``Linear`` layers A and B
(``A -> (ReLU | Dropout)* -> B`` inside a ``Sequential``) is *dead* when

- row ``j`` of A's ``weight_mask`` is all zero (no live inputs): it outputs the constant
  ``act(bias_j)``, where ``act`` is ReLU if a ReLU sits between A and B and the identity
  otherwise. That constant's contribution, ``B.weight[:, j] * B.weight_mask[:, j] * act(bias_j)``,
  is folded into B's bias before the neuron goes; or
- column ``j`` of B's ``weight_mask`` is all zero (no live outputs): nothing reads it.

The neuron's row of A (weight, mask, bias) and column of B are removed, and A and B are replaced by
new, smaller ``Linear`` modules under the same names. Removing a neuron can kill others (a neuron
of A whose only live outputs went to a removed neuron of B), so the passes repeat until nothing
changes. In eval mode the network's outputs are unchanged (up to float32 rounding of the folded
bias).

What is and is not handled:

- Only ``Linear`` chains among the direct children of a ``Sequential`` (nested ``Sequential`` are
  processed on their own; chains do not cross their boundaries).
- Convolutions are left alone: a dead output channel of a conv layer (or a dead input feeding the
  first fully connected layer from a ``Flatten``) is not removed. For LeNet-5 only fc1 -> fc2 is
  shrunk, and fc1 keeps all 800 inputs.
- In training mode a ``Dropout`` between A and B used to randomly drop the folded constant; after
  folding it is always there (the same in expectation, as dropout is inverted).
- A neuron with no live inputs, a non-zero constant output and a B without bias is kept (there is
  nowhere to fold the constant). When every neuron of a layer is dead, one is kept (unfolded), so
  that both layers keep a valid shape.
- The modules are new objects: build a new optimiser afterwards, and note that checkpoints of the
  old shapes no longer load. The global random generator is not advanced.
"""

from __future__ import annotations

import numpy as np

from minprune import random as minprune_random
from minprune.nn.layers import Dropout, Linear, ReLU, Sequential

__all__ = ["remove_dead_neurons", "dead_neuron_mask"]


def _chains(sequential) -> list[tuple[str, str, bool]]:
    """``[(name_a, name_b, has_relu)]`` for each ``Linear -> (ReLU|Dropout)* -> Linear``."""
    children = list(sequential._modules.items())
    chains = []
    for index, (name_a, module_a) in enumerate(children):
        if not isinstance(module_a, Linear):
            continue
        has_relu = False
        for name_b, module_b in children[index + 1:]:
            if isinstance(module_b, ReLU):
                has_relu = True
            elif isinstance(module_b, Dropout):
                continue
            else:
                if isinstance(module_b, Linear):
                    chains.append((name_a, name_b, has_relu))
                break
    return chains


def dead_neuron_mask(layer_a, layer_b) -> tuple[np.ndarray, np.ndarray]:
    """``(no_inputs, no_outputs)``: boolean arrays over A's output neurons, True where a neuron
    has no live input connection (row of A's mask all zero) or no live output connection (column
    of B's mask all zero)."""
    no_inputs = ~np.any(layer_a.weight_mask != 0, axis=1)
    no_outputs = ~np.any(layer_b.weight_mask != 0, axis=0)
    return no_inputs, no_outputs


def _smaller_linear(old: Linear, rows, columns) -> Linear:
    """A new Linear holding ``old``'s weight, mask and bias at ``rows`` x ``columns``; built
    without advancing the global random generator (its initial values are overwritten)."""
    state = minprune_random.get_rng_state()
    try:
        new = Linear(len(columns), len(rows), bias=old.bias is not None)
    finally:
        minprune_random.set_rng_state(state)
    new.weight.data[...] = old.weight.data[np.ix_(rows, columns)]
    new.weight_mask = old.weight_mask[np.ix_(rows, columns)]
    if old.bias is not None:
        new.bias.data[...] = old.bias.data[rows]
    new.train(old.training)
    return new


def _replace(sequential, name: str, new) -> None:
    """Put ``new`` in place of the child ``name``, keeping the children's order.

    ``Module.__setattr__`` registers a re-assigned child at the *end* of ``_modules``, which would
    change the order a ``Sequential`` runs its layers in; the order is restored afterwards.
    """
    order = list(sequential._modules)
    setattr(sequential, name, new)
    for key in order:
        sequential._modules.move_to_end(key)


def _remove_once(sequential, name_a: str, name_b: str, has_relu: bool) -> bool:
    """Remove the dead neurons between A and B once; return whether anything was removed."""
    layer_a, layer_b = sequential._modules[name_a], sequential._modules[name_b]
    no_inputs, no_outputs = dead_neuron_mask(layer_a, layer_b)
    constant = np.zeros(layer_a.out_features, dtype=np.float64)
    if layer_a.bias is not None:
        constant = layer_a.bias.data.astype(np.float64)
        if has_relu:
            constant = np.maximum(constant, 0.0)
    live_weight_b = layer_b.weight.data.astype(np.float64) * layer_b.weight_mask
    folded = live_weight_b * constant  # (out_b, out_a): each dead neuron's constant contribution
    contributes = np.any(folded != 0, axis=0)
    dead = no_outputs | (no_inputs & (~contributes | (layer_b.bias is not None)))
    if dead.all():
        dead[0] = False  # keep one neuron so both layers keep a valid shape
    if not dead.any():
        return False
    folding = dead & contributes  # contributes implies live outputs (and so no_inputs here)
    if folding.any():
        layer_b.bias.data[...] = (
            layer_b.bias.data.astype(np.float64) + folded[:, folding].sum(axis=1)
        ).astype(layer_b.bias.data.dtype)
    keep = np.flatnonzero(~dead)
    _replace(sequential, name_a, _smaller_linear(layer_a, keep, np.arange(layer_a.in_features)))
    _replace(sequential, name_b, _smaller_linear(layer_b, np.arange(layer_b.out_features), keep))
    return True


def _sequentials(model):
    """``[(dotted_name, sequential)]`` for ``model`` and every Sequential inside it."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, Sequential)]


def remove_dead_neurons(model) -> dict:
    """Remove every dead hidden neuron of ``model``'s fully connected chains, in place.

    Returns ``{layer_name: (old_out_features, new_out_features)}`` for every ``Linear`` that feeds
    another one through a chain (the hidden layers, e.g. ``fc1`` and ``fc2`` of LeNet-300-100),
    including those that lost nothing. Layers are named by their dotted module name. Raises
    ValueError when the model holds no ``Sequential`` at all.
    """
    sequentials = _sequentials(model)
    if not sequentials:
        raise ValueError(
            f"remove_dead_neurons works on Sequential models; got {type(model).__name__}"
        )
    report = {}
    for prefix, sequential in sequentials:
        chains = _chains(sequential)
        for name_a, _, _ in chains:
            dotted = f"{prefix}.{name_a}" if prefix else name_a
            report[dotted] = (sequential._modules[name_a].out_features, None)
        changed = True
        while changed:
            changed = False
            for name_a, name_b, has_relu in chains:
                changed |= _remove_once(sequential, name_a, name_b, has_relu)
        for name_a, _, _ in chains:
            dotted = f"{prefix}.{name_a}" if prefix else name_a
            report[dotted] = (report[dotted][0], sequential._modules[name_a].out_features)
    return report
