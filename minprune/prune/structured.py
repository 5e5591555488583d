"""Structured pruning: remove whole channels and neurons by the L1 norm of their weights, and
rebuild the layers smaller (Li et al. 2017, "Pruning Filters for Efficient ConvNets", ICLR).

Han et al. prune single connections; the layer keeps its shape and needs sparse kernels to turn
the zeros into time. Li et al. remove whole filters, so the layer stays dense and just gets
smaller -- any dense kernel runs it faster. Their Sec. 3.1, for each layer:

1. "For each filter F_i,j, calculate the sum of its absolute kernel weights s_j = sum |K_l|";
2. "Sort the filters by s_j";
3. "Prune m filters with the smallest sum values and their corresponding feature maps. The
   kernels in the next convolutional layer corresponding to the pruned feature maps are also
   removed";
4. "A new kernel matrix is created for both the ith and i+1th layers, and the remaining kernel
   weights are copied to the new model."

Then retrain (their Sec. 3.4; here `minprune.prune.retrain` or `minprune.fit_phase`). A Linear's
neurons are its weight's rows and are ranked the same way. Norms are taken over the *masked*
weight, so a layer already pruned by connections ranks its channels by what survives, and the
masks of the kept weights are kept (channels first, then connections -- or the other way round).

``sensitivity`` is their Sec. 3.2 analysis (Fig. 2(b)): each layer's weakest channels removed
alone, at a ladder of fractions, without retraining, the error measured on a validation set.
The rebuilding itself is `minprune.prune.structured_surgery`.

Where minprune departs from Li et al.: the removed channels' constant outputs (their bias after
the activation) are folded into the next layer's bias (`structured_surgery`); the number removed
is ``round(fraction x outputs)``; only direct children of a ``Sequential`` are rebuilt.
"""

from __future__ import annotations

import numpy as np

from minprune.data.entry import as_dataset
from minprune.nn.layers import Conv2d, Linear, Sequential
from minprune.nn.module import copy_model
from minprune.prune.structured_surgery import _resolve, next_weighted_layer, remove_outputs
from minprune.training.fit import evaluate

__all__ = [
    "channel_norms",
    "weakest_channels",
    "channel_prune",
    "prunable_channels",
    "sensitivity",
    "parameter_count",
]


def channel_norms(layer) -> np.ndarray:
    """s_j of Li et al. Sec. 3.1: the L1 norm of each output channel's filter (Conv2d) or each
    neuron's weight row (Linear), over the masked weight; float64, one per output."""
    if not isinstance(layer, Linear | Conv2d):
        raise TypeError(f"channel_norms: expected a Linear or Conv2d layer, got "
                        f"{type(layer).__name__}")
    weight = np.abs(layer.weight.data.astype(np.float64) * layer.weight_mask)
    return weight.reshape(len(weight), -1).sum(axis=1)


def _count(outputs: int, amount, layer: str) -> int:
    """How many outputs ``amount`` removes: a fraction in [0, 1) of them, rounded, or a count."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | np.number):
        raise ValueError(f"'{layer}': amount must be a fraction in [0, 1) or a count, got "
                         f"{amount!r}")
    if isinstance(amount, int | np.integer):
        if not 0 <= amount < outputs:
            raise ValueError(f"'{layer}': cannot remove {amount} of its {outputs} outputs; "
                             f"expected 0..{outputs - 1}")
        return int(amount)
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"'{layer}': fraction to remove must be in [0, 1), got {amount!r}")
    return min(int(round(amount * outputs)), outputs - 1)


def weakest_channels(layer, amount) -> np.ndarray:
    """The indices (ascending) of the ``amount`` outputs of smallest L1 norm (`channel_norms`):
    ``amount`` a fraction in [0, 1) of the outputs (rounded; at least one output stays) or an
    int count. Ties go to the lower index."""
    norms = channel_norms(layer)
    count = _count(len(norms), amount, layer.name)
    return np.sort(np.argsort(norms, kind="stable")[:count])


def prunable_channels(model) -> list[str]:
    """The names of the layers whose outputs can be removed: every Linear or Conv2d child of
    the ``Sequential`` that feeds another weighted layer (not the output layer)."""
    if not isinstance(model, Sequential):
        raise ValueError(f"structured pruning works on a Sequential model (its direct children), "
                         f"got {type(model).__name__}")
    names = []
    for name, child in model._modules.items():
        if isinstance(child, Linear | Conv2d):
            try:
                next_weighted_layer(model, name)
            except ValueError:
                continue
            names.append(name)
    return names


def channel_prune(model, amounts: dict, *, fold_constants: bool = True) -> dict:
    """Remove each named layer's weakest outputs by L1 norm and rebuild the layers, in place.

    ``amounts`` is ``{layer: amount}`` (``"conv2"`` or ``"conv2.weight"``; amount a fraction in
    [0, 1) of the layer's current outputs, or an int count), with an optional ``'*'`` default for
    every other layer of `prunable_channels`. Every layer is ranked on the model as it was given
    (Li et al.'s "independent" pruning, Sec. 3.3), then the layers are rebuilt one by one. Returns
    ``{layer: (outputs before, outputs after)}``. Everything is checked before the model changes.
    Build a new optimiser afterwards: the layers are new objects."""
    if not isinstance(amounts, dict):
        raise TypeError(f"channel_prune: amounts must be a dict {{layer: fraction}}, got "
                        f"{type(amounts).__name__}")
    prunable = prunable_channels(model)
    chosen = {}
    for key, amount in amounts.items():
        if key == "*":
            continue
        name = _resolve(model, key)
        if name not in prunable:
            next_weighted_layer(model, name)  # raises, saying why
        chosen[name] = amount
    if "*" in amounts:
        chosen = {name: chosen.get(name, amounts["*"]) for name in prunable}
    removals = {name: weakest_channels(model._modules[name], amount)
                for name, amount in chosen.items()}
    report = {}
    for name, removed in removals.items():
        result = remove_outputs(model, name, removed, fold_constants=fold_constants)
        report[name] = result["outputs"]
    return report


def sensitivity(model, dataset, fractions, layers=None, *, batch_size=None) -> list[dict]:
    """Li et al.'s Sec. 3.2 analysis: for each layer alone (``layers``, default
    `prunable_channels`) and each fraction, remove that fraction of its weakest outputs from a
    copy of ``model``, without retraining, and evaluate on ``dataset`` (a validation split).
    Rows: ``{layer, fraction, removed, kept, parameters, error, accuracy, loss}``. ``model`` is
    not changed."""
    fractions = [float(value) for value in np.atleast_1d(fractions)]
    if not fractions:
        raise ValueError("structured sensitivity: fractions is empty; give at least one")
    for value in fractions:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"structured sensitivity: fraction {value!r} is not in [0, 1)")
    layers = prunable_channels(model) if layers is None else [
        _resolve(model, name) for name in ([layers] if isinstance(layers, str) else layers)]
    for name in layers:
        next_weighted_layer(model, name)  # the output layer and the like are refused here
    dataset = as_dataset(dataset, "structured sensitivity: dataset")
    rows = []
    for name in layers:
        for fraction in fractions:
            copy = copy_model(model)
            report = channel_prune(copy, {name: fraction})
            metrics = evaluate(copy, dataset, batch_size=batch_size)
            before, after = report[name]
            rows.append({"layer": name, "fraction": fraction, "removed": before - after,
                         "kept": after, "parameters": parameter_count(copy),
                         "error": metrics["error"], "accuracy": metrics["accuracy"],
                         "loss": metrics["loss"]})
    return rows


def parameter_count(model, *, kept_only: bool = False) -> int:
    """Weights and biases of ``model`` (Table 1's count); ``kept_only`` counts only the weights
    their masks keep (and every bias)."""
    total = 0
    for _, parameter in model.named_parameters():
        if kept_only and parameter.mask is not None:
            total += int(np.count_nonzero(parameter.mask))
        else:
            total += int(parameter.data.size)
    return total
