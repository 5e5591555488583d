"""Per-layer reports in the layout of the paper's Tables 2 and 3 (Han et al. 2015, Sec. 4).

For every prunable layer the paper lists the dense ``Weights`` and ``FLOP``, the density of the
layer's output activations (``Act%``), and the fraction of weights and of FLOP that pruning keeps
(``Weights%``, ``FLOP%``). :func:`layer_table` measures the same columns on a model and a dataset,
:func:`summary_row` gives the Table 1 line (error and parameters before/after, compression), and
:func:`format_table` prints both our numbers and, optionally, the paper's beside them.

How each column is computed, and where it departs from the paper:

- ``flop`` is 2 x multiply-adds of the *dense* layer for one image (the paper's convention):
  ``2 * in * out`` for Linear, ``2 * out_h * out_w * k * k * in_c * out_c`` for Conv2d, with the
  output size taken from a real forward pass, not hard-coded.
- ``act`` is the fraction of non-zero values among the activations *as the next prunable layer
  receives them*, i.e. after ReLU, pooling and flattening, measured over the whole dataset. The
  last layer's ``act`` is 100% by convention, as in the paper (its outputs are the logits).
- ``flop_kept`` = ``weights_kept`` x the density of the layer's *input* activations. The paper
  gives no formula; this product reproduces its LeNet columns (e.g. fc3 of LeNet-300-100:
  26% x 65% = 17%). The first layer's input is counted as dense (100%), as the paper does,
  although MNIST pixels are mostly zero. It is an estimate: it assumes the zeros of an input fall
  evenly on the kept and the pruned connections.
- The ``total`` row weights ``act`` by the number of activations each layer hands on per image
  (its output size as the next layer receives it, e.g. after pooling); this reproduces the paper's
  totals (46% for LeNet-300-100, 77% for LeNet-5). ``weights_kept`` and ``flop_kept`` of the total
  are kept / dense over all layers.

The walk through the model only understands ``Sequential`` models (nested ``Sequential`` are
flattened), which is how both LeNets are built.
"""

from __future__ import annotations

import math

import numpy as np

from minprune.checkpoint import atomic_write_json
from minprune.data import batches
from minprune.nn.layers import Conv2d, Linear, Sequential
from minprune.prune.masks import prunable_layers
from minprune.tensor import Tensor, no_grad

__all__ = [
    "layer_table",
    "summary_row",
    "format_table",
    "format_summary",
    "format_count",
    "format_percent",
    "save_json",
    "PAPER_LENET_300_100",
    "PAPER_LENET5",
    "PAPER_SUMMARY",
]

# The paper's Table 2 (LeNet-300-100) and Table 3 (LeNet-5), as printed (paper-notes.md).
PAPER_LENET_300_100 = [
    {"layer": "fc1", "weights": 235_000, "flop": 470_000, "act": 0.38,
     "weights_kept": 0.08, "flop_kept": 0.08},
    {"layer": "fc2", "weights": 30_000, "flop": 60_000, "act": 0.65,
     "weights_kept": 0.09, "flop_kept": 0.04},
    {"layer": "fc3", "weights": 1_000, "flop": 2_000, "act": 1.00,
     "weights_kept": 0.26, "flop_kept": 0.17},
    {"layer": "total", "weights": 266_000, "flop": 532_000, "act": 0.46,
     "weights_kept": 0.08, "flop_kept": 0.08},
]
PAPER_LENET5 = [
    {"layer": "conv1", "weights": 500, "flop": 576_000, "act": 0.82,
     "weights_kept": 0.66, "flop_kept": 0.66},
    {"layer": "conv2", "weights": 25_000, "flop": 3_200_000, "act": 0.72,
     "weights_kept": 0.12, "flop_kept": 0.10},
    {"layer": "fc1", "weights": 400_000, "flop": 800_000, "act": 0.55,
     "weights_kept": 0.08, "flop_kept": 0.06},
    {"layer": "fc2", "weights": 5_000, "flop": 10_000, "act": 1.00,
     "weights_kept": 0.19, "flop_kept": 0.10},
    {"layer": "total", "weights": 431_000, "flop": 4_586_000, "act": 0.77,
     "weights_kept": 0.08, "flop_kept": 0.16},
]
# The paper's Table 1 lines for the two LeNets (parameters include biases).
PAPER_SUMMARY = {
    "lenet-300-100": {"error_before": 0.0164, "error_after": 0.0159,
                      "parameters_before": 267_000, "parameters_after": 22_000,
                      "compression": 12.0},
    "lenet5": {"error_before": 0.0080, "error_after": 0.0077,
               "parameters_before": 431_000, "parameters_after": 36_000,
               "compression": 12.0},
}

COLUMNS = ("Layer", "Weights", "FLOP", "Act%", "Weights%", "FLOP%")


# ---- measuring ----------------------------------------------------------------------------------
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
    """2 x multiply-adds of the dense layer for one image."""
    if isinstance(layer, Linear):
        return 2 * layer.in_features * layer.out_features
    out_h, out_w = out_shape[1], out_shape[2]
    k = layer.kernel_size
    return 2 * out_h * out_w * k * k * layer.in_channels * layer.out_channels


def layer_table(model, dataset, batch_size: int = 1000) -> list[dict]:
    """The paper's Table 2/3 for ``model`` measured on ``dataset``: one row per prunable layer
    plus a ``total`` row, each ``{layer, weights, flop, act, weights_kept, flop_kept,
    input_act}`` (fractions, not percent). ``input_act`` is the input density used for
    ``flop_kept`` (1.0 for the first layer by the paper's convention; None in the total row).

    See the module docstring for each column's definition and the departures from the paper.
    """
    if len(dataset) == 0:
        raise ValueError("layer_table: the dataset is empty; activations cannot be measured")
    layers = {name.rsplit(".", 1)[0] if "." in name else "": layer
              for name, layer in prunable_layers(model).items()}
    stats = _measure(model, dataset, batch_size)
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
    masks = {id(layer.weight): layer.weight_mask for layer in prunable_layers(model).values()}
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


# ---- printing -----------------------------------------------------------------------------------
def _half_up(x: float, digits: int = 0) -> str:
    """``x`` rounded half up (as printed tables round: 430.5 -> 431), without trailing zeros."""
    scale = 10**digits
    text = f"{math.floor(x * scale + 0.5) / scale:.{digits}f}"
    return text.rstrip("0").rstrip(".") if digits else text


def format_count(n) -> str:
    """A count as the paper prints it: ``0.5K``, ``235K``, ``4586K``, ``38M``, ``1.5B``.

    Thousands up to 10 million (the LeNet tables print 4586K), millions up to a billion; counts
    below 50 print as they are.
    """
    if n is None:
        return "-"
    n = float(n)
    if n >= 1e9:
        return f"{_half_up(n / 1e9, 1)}B"
    if n >= 1e7:
        return f"{_half_up(n / 1e6)}M"
    if n >= 1e4:
        return f"{_half_up(n / 1e3)}K"
    if n >= 50:
        return f"{_half_up(n / 1e3, 1)}K"
    return f"{n:.0f}"


def format_percent(fraction) -> str:
    """A fraction as a whole percent (``38%``); one decimal below 1%, so small values show."""
    if fraction is None:
        return "-"
    percent = 100.0 * fraction
    if 0 < percent < 1:
        return f"{percent:.1f}%"
    return f"{percent:.0f}%"


def _cells(row) -> list[str]:
    return [
        str(row["layer"]),
        format_count(row["weights"]),
        format_count(row["flop"]),
        format_percent(row["act"]),
        format_percent(row["weights_kept"]),
        format_percent(row["flop_kept"]),
    ]


def _render(header, body) -> str:
    """Columns padded to a common width: the first left-aligned, numbers right-aligned."""
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    lines = [
        " | ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *body]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def format_table(rows, paper=None) -> str:
    """A text table in the paper's layout (Layer | Weights | FLOP | Act% | Weights% | FLOP%).

    With ``paper`` (e.g. :data:`PAPER_LENET_300_100`), each cell reads ``ours (paper)``; rows are
    matched by layer name and a layer the paper does not list shows ``-``.
    """
    if not rows:
        raise ValueError("format_table: no rows to print")
    if paper is None:
        return _render(list(COLUMNS), [_cells(row) for row in rows])
    by_name = {row["layer"]: _cells(row) for row in paper}
    body = []
    for row in rows:
        ours = _cells(row)
        theirs = by_name.get(row["layer"], ["-"] * len(ours))
        body.append([ours[0]] + [f"{a} ({b})" for a, b in zip(ours[1:], theirs[1:], strict=True)])
    header = [COLUMNS[0]] + [f"{name} (paper)" for name in COLUMNS[1:]]
    return _render(header, body)


def format_summary(summary: dict, paper: dict | None = None) -> str:
    """The Table 1 line as text, e.g. ``error 1.64% -> 1.59%, parameters 267K -> 22K (12x)``,
    with the paper's line (from :data:`PAPER_SUMMARY`) after it when given."""
    def text(line):
        return (
            f"error {line['error_before']:.2%} -> {line['error_after']:.2%}, parameters "
            f"{format_count(line['parameters_before'])} -> "
            f"{format_count(line['parameters_after'])} ({line['compression']:.1f}x)"
        )
    if paper is None:
        return text(summary)
    return f"ours:  {text(summary)}\npaper: {text(paper)}"


# ---- saving -------------------------------------------------------------------------------------
def _plain(value):
    """NumPy scalars and arrays, tuples and dicts turned into JSON's types."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_json(path, data) -> None:
    """Write a report (rows, a summary, or a dict of them) as JSON, atomically."""
    atomic_write_json(path, _plain(data))
