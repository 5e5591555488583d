"""Remove dead neurons, so that pruning really shrinks the layers (Han et al. 2015, Sec. 3.5).

The paper: "neurons with zero input connections or zero output connections may be safely
pruned." A hidden neuron between two ``Linear`` layers A and B (``A -> (ReLU | Dropout)* -> B``
in a ``Sequential``) is dead when its row of A's mask or its column of B's mask is all zero. A
neuron with no inputs still outputs ``act(bias)``; that constant is folded into B's bias before
the neuron goes, so eval-mode outputs are unchanged (up to float32 rounding). Passes repeat until
nothing changes.

Where this departs from the paper's plain statement: only ``Linear`` chains among the direct
children of a ``Sequential`` are shrunk (conv channels are left alone, so LeNet-5's fc1 keeps its
800 inputs); in training mode a Dropout between A and B no longer drops the folded constant (the
same in expectation); a neuron whose constant has nowhere to go (B without bias) is kept, and so
is one neuron of a layer that is dead throughout. The layers are replaced by new, smaller
modules: build a new optimiser afterwards. The global random generator is not advanced.
"""

from __future__ import annotations

import numpy as np

import minprune.base.random as minprune_random
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
