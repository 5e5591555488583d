"""The paper's Tables 1-3 measured on a model: per-layer rows and the summary line (Sec. 4).

How the columns are computed, and where they depart from the paper:

- ``flop``: 2 x multiply-adds of the *dense* layer for one image (the paper's convention), with
  the output size taken from a real forward pass.
- ``act``: the fraction of non-zero activations as the *next* prunable layer receives them (after
  ReLU, pooling, flattening), over the whole dataset; 100% for the last layer, as in the paper.
- ``flop_kept`` = ``weights_kept`` x the density of the layer's input. The paper gives no formula;
  this product reproduces its LeNet columns (fc3 of LeNet-300-100: 26% x 65% = 17%). The first
  layer's input counts as dense, as in the paper. It assumes an input's zeros fall evenly on kept
  and pruned connections.
- the ``total`` row weights ``act`` by the activations each layer hands on per image, which
  reproduces the paper's totals (46% for LeNet-300-100, 77% for LeNet-5).

Only ``Sequential`` models are walked (nested ones are flattened), which is how both LeNets are
built.
"""

from __future__ import annotations

import numpy as np

from minprune.autograd.tensor import Tensor, no_grad
from minprune.data.batching import batches, evaluation_batch_size
from minprune.data.entry import as_dataset
from minprune.nn.layers import Conv2d, Linear, Sequential
from minprune.prune.masks import layers_by_weight_name

__all__ = ["layer_table", "summary_row"]


def _leaf_sequence(model, prefix: str = ""):
    """``[(dotted_name, module)]`` in the order a ``Sequential`` runs them; nested ones are
    flattened."""
    if not isinstance(model, Sequential):
        raise ValueError(
            f"layer_table walks Sequential models only; got {type(model).__name__}"
        )
    sequence = []
    for name, child in model._modules.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if isinstance(child, Sequential):
            sequence.extend(_leaf_sequence(child, dotted))
        elif child._modules:
            raise ValueError(
                f"layer_table cannot walk into {type(child).__name__} '{dotted}' (it has "
                "children but is not a Sequential)"
            )
        else:
            sequence.append((dotted, child))
    return sequence


def _measure(model, dataset, batch_size: int) -> dict:
    """Run ``dataset`` through the model layer by layer; for each prunable layer (by module name)
    count the non-zero values of its input and remember its per-image input and output shapes."""
    sequence = _leaf_sequence(model)
    stats = {
        name: {"nonzero": 0, "total": 0, "in_shape": None, "out_shape": None}
        for name, module in sequence
        if isinstance(module, Linear | Conv2d)
    }
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for images, _ in batches(dataset, batch_size, shuffle=False):
                x = Tensor(images)
                for name, module in sequence:
                    if name in stats:
                        stats[name]["nonzero"] += int(np.count_nonzero(x.data))
                        stats[name]["total"] += x.data.size
                        stats[name]["in_shape"] = x.shape[1:]
                    x = module(x)
                    if name in stats:
                        stats[name]["out_shape"] = x.shape[1:]
    finally:
        model.train(was_training)
    return stats


def _dense_flop(layer, out_shape) -> int:
    """2 x multiply-adds of the dense layer for one image: each weight of a conv layer is used
    once per output position (a grouped conv's filters see only their group's channels)."""
    if isinstance(layer, Linear):
        return 2 * layer.in_features * layer.out_features
    out_h, out_w = out_shape[1], out_shape[2]
    return 2 * out_h * out_w * layer.weight.size


def layer_table(model, dataset, batch_size: int | None = None) -> list[dict]:
    """The paper's Table 2/3 for ``model`` measured on ``dataset``: one row per prunable layer
    plus a ``total`` row, each ``{layer, weights, flop, act, weights_kept, flop_kept,
    input_act}`` (fractions, not percent). ``input_act`` is the input density used for
    ``flop_kept`` (1.0 for the first layer by the paper's convention; None in the total row).

    ``dataset`` is a `Dataset`, an `ImageFolder` or an ``(images, labels)`` pair. See the module
    docstring for each column's definition and the departures from the paper.
    """
    dataset = as_dataset(dataset, "layer_table: dataset")
    if len(dataset) == 0:
        raise ValueError("layer_table: the dataset is empty; activations cannot be measured")
    layers = {name.rsplit(".", 1)[0] if "." in name else "": layer
              for name, layer in layers_by_weight_name(model).items()}
    stats = _measure(model, dataset, batch_size or evaluation_batch_size(dataset))
    missing = [name for name in layers if name not in stats]
    if missing:
        raise ValueError(f"layer_table: prunable layers {missing} are not reached by the walk")
    names = list(layers)
    # Density of each layer's input as that layer receives it (after ReLU/pooling/flatten).
    input_density = {name: stats[name]["nonzero"] / stats[name]["total"] for name in names}

    rows = []
    for index, name in enumerate(names):
        layer = layers[name]
        is_last = index == len(names) - 1
        weights = int(layer.weight_mask.size)
        flop = _dense_flop(layer, stats[name]["out_shape"])
        weights_kept = int(np.count_nonzero(layer.weight_mask)) / weights
        input_act = 1.0 if index == 0 else input_density[name]
        if is_last:
            act, handed_on = 1.0, int(np.prod(stats[name]["out_shape"]))
        else:
            following = names[index + 1]
            act = input_density[following]
            handed_on = int(np.prod(stats[following]["in_shape"]))
        rows.append({
            "layer": name,
            "weights": weights,
            "flop": flop,
            "act": act,
            "weights_kept": weights_kept,
            "flop_kept": weights_kept * input_act,
            "input_act": input_act,
            "_handed_on": handed_on,
        })

    total_weights = sum(row["weights"] for row in rows)
    total_flop = sum(row["flop"] for row in rows)
    total_handed_on = sum(row["_handed_on"] for row in rows)
    rows.append({
        "layer": "total",
        "weights": total_weights,
        "flop": total_flop,
        "act": sum(row["act"] * row["_handed_on"] for row in rows) / total_handed_on,
        "weights_kept": sum(row["weights_kept"] * row["weights"] for row in rows) / total_weights,
        "flop_kept": sum(row["flop_kept"] * row["flop"] for row in rows) / total_flop,
        "input_act": None,
    })
    for row in rows:
        row.pop("_handed_on", None)
    return rows


def summary_row(dense_error: float, pruned_error: float, model) -> dict:
    """The paper's Table 1 line: ``{error_before, error_after, parameters_before,
    parameters_after, compression}``.

    ``parameters_before`` counts every parameter of ``model`` (all weights and biases, e.g.
    266,610 for LeNet-300-100, which the paper rounds to 267K). ``parameters_after`` counts the
    non-zero masked weights of the prunable layers plus *all* other parameters (biases are never
    pruned). ``compression`` is before / after.
    """
    for label, value in (("dense_error", dense_error), ("pruned_error", pruned_error)):
        if not isinstance(value, int | float | np.number) or not 0.0 <= value <= 1.0:
            raise ValueError(f"summary_row: {label} must be a fraction in [0, 1], got {value!r}")
    masks = {id(layer.weight): layer.weight_mask for layer in layers_by_weight_name(model).values()}
    before, after = 0, 0
    for _, parameter in model.named_parameters():
        before += parameter.data.size
        if id(parameter) in masks:
            after += int(np.count_nonzero(parameter.data * masks[id(parameter)]))
        else:
            after += parameter.data.size
    return {
        "error_before": float(dense_error),
        "error_after": float(pruned_error),
        "parameters_before": before,
        "parameters_after": after,
        "compression": before / after if after else float("inf"),
    }
