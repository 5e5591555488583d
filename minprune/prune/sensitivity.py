"""Sensitivity analysis: prune one layer at a time and measure accuracy, without retraining.

Han et al. 2015, Sec. 5 (Fig. 6): accuracy falls "as parameters are pruned on a layer-by-layer
basis"; the most sensitive layers get the smallest thresholds. The paper gives no rule for
turning the curves into thresholds; :func:`qualities_for_tolerance` and
:func:`keep_ratios_for_tolerance` use Intel Distiller's: the harshest level whose accuracy drop
stays within a tolerance.

Levels are *qualities* (prune ``|w| < quality x std`` of the layer's surviving weights, the
paper's rule) or *keep ratios* (keep the largest-magnitude fraction of the whole layer; on a layer
already pruned to density d, ratios above d change nothing -- each row's ``density`` says what was
kept). The model is restored exactly after every measurement, also when one fails.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from minprune.data.entry import as_dataset
from minprune.prune.criteria import keep_ratio_prune, layer_std
from minprune.prune.masks import layer_density, layers_by_weight_name, prune_below
from minprune.training.fit import evaluate, show_progress

__all__ = ["sensitivity_analysis", "qualities_for_tolerance", "keep_ratios_for_tolerance"]


def _check_levels(levels, kind: str) -> list[float]:
    """The levels as floats; ValueError naming the bad one."""
    if isinstance(levels, int | float | np.number):
        levels = [levels]
    levels = list(levels)
    if not levels:
        raise ValueError(f"sensitivity_analysis: {kind} is empty; give at least one level")
    for value in levels:
        is_number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if kind == "keep_ratios" and not (is_number and 0 < value <= 1):
            raise ValueError(f"sensitivity_analysis: keep ratio {value!r} is not in (0, 1]")
        if kind == "qualities" and not (is_number and np.isfinite(value) and value > 0):
            raise ValueError(
                f"sensitivity_analysis: quality {value!r} is not a finite number > 0"
            )
    return [float(value) for value in levels]


def _resolve_layers(model, layers) -> dict:
    """``{weight_name: layer}`` for the requested layers (``"fc1.weight"`` or ``"fc1"``)."""
    available = layers_by_weight_name(model)
    if layers is None:
        return available
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("sensitivity_analysis: layers is empty; give None for every layer")
    chosen = {}
    for name in layers:
        weight_name = name if name in available else f"{name}.weight"
        if weight_name not in available:
            raise ValueError(
                f"sensitivity_analysis: {name!r} names no prunable layer; expected one of "
                f"{list(available)}"
            )
        chosen[weight_name] = available[weight_name]
    return chosen


def _prune_one_layer(model, name: str, layer, kind: str, level: float) -> float:
    """Prune only ``layer`` at ``level``; return the threshold used."""
    if kind == "keep_ratio":
        return keep_ratio_prune(model, {name: level, "*": 1.0})[name]
    threshold = level * layer_std(layer)
    prune_below(layer, threshold)
    return threshold


def sensitivity_analysis(
    model,
    dataset,
    keep_ratios=None,
    qualities=None,
    layers=None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> list[dict]:
    """Prune each layer alone at each level, evaluate on ``dataset``, restore; return the rows.

    Give exactly one of ``keep_ratios`` (each in (0, 1]) or ``qualities`` (each > 0). ``layers``
    is a list of weight names (``"fc1.weight"``) or layer names (``"fc1"``); None means every
    prunable layer. Each row is ``{layer, keep_ratio | quality, threshold, density, accuracy,
    error, loss}``; ``layer`` is the weight name, as the criteria's per-layer dicts expect, and
    ``density`` is the layer's fraction of weights kept at that level.

    ``dataset`` is a `Dataset`, an `ImageFolder` or an ``(images, labels)`` pair. ``progress``:
    a bar when True, none when False, only when stderr is a terminal when None.

    Everything is checked before the model is touched; afterwards the model's weights and masks
    are exactly what they were.
    """
    if (keep_ratios is None) == (qualities is None):
        raise ValueError(
            "sensitivity_analysis: give exactly one of keep_ratios or qualities, got "
            + ("both" if keep_ratios is not None else "neither")
        )
    kind, levels = (
        ("keep_ratio", _check_levels(keep_ratios, "keep_ratios"))
        if keep_ratios is not None
        else ("quality", _check_levels(qualities, "qualities"))
    )
    chosen = _resolve_layers(model, layers)
    dataset = as_dataset(dataset, "sensitivity_analysis: dataset")
    if len(dataset) == 0:
        raise ValueError("sensitivity_analysis: the dataset is empty")

    original = model.state_dict()
    rows = []
    bar = tqdm(total=len(chosen) * len(levels), desc="sensitivity",
               disable=not show_progress(progress), leave=False)
    try:
        for name, layer in chosen.items():
            for level in levels:
                threshold = _prune_one_layer(model, name, layer, kind, level)
                metrics = evaluate(model, dataset, batch_size=batch_size)
                rows.append({
                    "layer": name,
                    kind: level,
                    "threshold": float(threshold),
                    "density": layer_density(layer),
                    "accuracy": metrics["accuracy"],
                    "error": metrics["error"],
                    "loss": metrics["loss"],
                })
                model.load_state_dict(original, unprune=True)  # undo this scan's pruning
                bar.update(1)
                bar.set_postfix(layer=name, accuracy=f"{metrics['accuracy']:.4f}")
    finally:
        model.load_state_dict(original, unprune=True)  # undo this scan's pruning
        bar.close()
    return rows


def _harshest_within(rows, key: str, max_accuracy_drop, baseline_accuracy, gentlest_first):
    """Per layer, walk the levels from gentlest to harshest and keep the last one whose drop is
    within tolerance, stopping at the first that is not."""
    if not isinstance(max_accuracy_drop, int | float | np.number) or max_accuracy_drop < 0:
        raise ValueError(f"max_accuracy_drop must be a number >= 0, got {max_accuracy_drop!r}")
    if not isinstance(baseline_accuracy, int | float | np.number) or not (
        0 <= baseline_accuracy <= 1
    ):
        raise ValueError(f"baseline_accuracy must be in [0, 1], got {baseline_accuracy!r}")
    rows = list(rows)
    if not rows:
        raise ValueError("no sensitivity rows given")
    wrong = [row for row in rows if key not in row]
    if wrong:
        raise ValueError(
            f"sensitivity rows without {key!r} (keys {sorted(wrong[0])}); run "
            f"sensitivity_analysis with {key}s=..."
        )
    by_layer: dict[str, list] = {}
    for row in rows:
        by_layer.setdefault(row["layer"], []).append(row)
    chosen = {}
    for layer, layer_rows in by_layer.items():
        ordered = sorted(layer_rows, key=lambda row: row[key], reverse=not gentlest_first)
        best = None
        for row in ordered:
            if baseline_accuracy - row["accuracy"] > max_accuracy_drop + 1e-12:
                break
            best = row[key]
        if best is None:
            gentlest = ordered[0]
            raise ValueError(
                f"{layer!r}: even the gentlest {key} {gentlest[key]} drops accuracy by "
                f"{baseline_accuracy - gentlest['accuracy']:.4f} > {max_accuracy_drop}; "
                f"measure gentler levels"
            )
        chosen[layer] = best
    return chosen


def qualities_for_tolerance(rows, max_accuracy_drop: float, baseline_accuracy: float) -> dict:
    """``{weight_name: quality}``: per layer, the largest quality whose accuracy drop (baseline
    minus accuracy, fractions) is at most ``max_accuracy_drop``.

    Conservative where a curve is not monotone: levels are walked from the smallest quality up
    and the walk stops at the first one that exceeds the tolerance, so a lucky harsh level past a
    bad one is not chosen. A layer whose smallest quality already exceeds it is a ValueError.
    The result feeds :func:`~minprune.prune.criteria.threshold_prune` directly.
    """
    return _harshest_within(rows, "quality", max_accuracy_drop, baseline_accuracy,
                            gentlest_first=True)


def keep_ratios_for_tolerance(rows, max_accuracy_drop: float, baseline_accuracy: float) -> dict:
    """``{weight_name: keep_ratio}``: per layer, the smallest keep ratio whose accuracy drop is at
    most ``max_accuracy_drop``, walking from the largest ratio down (see
    :func:`qualities_for_tolerance`). The result feeds
    :func:`~minprune.prune.criteria.keep_ratio_prune`."""
    return _harshest_within(rows, "keep_ratio", max_accuracy_drop, baseline_accuracy,
                            gentlest_first=False)
