"""Pruning criteria: each one produces masks, nothing else.

- ``threshold_prune``: the paper's rule (Sec. 3; the threshold, Sec. 4): prune every weight of a
  layer whose magnitude is below ``quality x std`` of that layer's weights.
- ``keep_ratio_prune``/``l1_unstructured``: keep the largest-magnitude fraction of each layer (for
  sweeps and schedules that aim at a density).
- ``global_unstructured``: one magnitude threshold across all layers (for comparison; the paper
  prunes per layer).

Every function resolves and checks its whole configuration before it changes any mask.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from minprune.prune.masks import layers_by_weight_name, prune_below, resolve_per_layer, set_mask

__all__ = [
    "StdOf",
    "Thresholds",
    "layer_std",
    "check_quality",
    "check_keep_ratio",
    "threshold_prune",
    "keep_ratio_prune",
    "largest",
    "l1_unstructured",
    "global_unstructured",
    "magnitude_threshold",
]



class StdOf(StrEnum):
    """Which standard deviation ``threshold_prune`` multiplies by the quality.

    The paper says "the standard deviation of a layer's weights" (Sec. 4) and not which weights
    once some are pruned. Both readings are here, and every result says which one it used:

    - ``SURVIVING`` (minprune's reading, the default): the std of the weights the layer still
      has, taken anew each round. A pruned weight is no longer one of the layer's weights, so it
      does not count. As rounds remove small weights and retraining grows the rest, the
      threshold for one quality grows round by round, so a repeated quality keeps pruning
      (Sec. 3.4's iterations). Quality 1.0 three times on a Gaussian layer, no retraining:
      31.7%, 11.2%, 4.0% kept.
    - ``DENSE``: the std of the dense, unpruned weights, taken once before the first round
      (Intel Distiller's sensitivity pruner, which notes it). A repeated quality then prunes
      only what retraining moved below the first threshold: 31.7% kept each of those three times.

    A ``StdOf`` is a ``str`` ("surviving", "dense"), so it is saved in JSON as itself.
    """

    SURVIVING = "surviving"
    DENSE = "dense"


STD_OF = tuple(StdOf)


class Thresholds(dict):
    """``{layer name: threshold}`` as `threshold_prune` applied them, with ``std_of``: the
    `StdOf` the thresholds were taken from (quality x that std)."""

    def __init__(self, thresholds: dict, std_of: StdOf):
        super().__init__(thresholds)
        self.std_of = StdOf(std_of)


def check_quality(value):
    """An error message when ``value`` is not a valid quality (a number > 0), else None."""
    if not isinstance(value, int | float | np.number) or not np.isfinite(value) or value <= 0:
        return f"quality must be a number > 0, got {value!r}"
    return None


def check_keep_ratio(value):
    """An error message when ``value`` is not a valid keep ratio (in (0, 1]), else None."""
    if not isinstance(value, int | float | np.number) or not 0 < value <= 1:
        return f"keep ratio must be in (0, 1], got {value!r}"
    return None


def layer_std(layer) -> float:
    """Standard deviation of the layer's surviving (unmasked) weights (`StdOf.SURVIVING`; of a
    layer not yet pruned, that is its dense std)."""
    survivors = layer.weight.data[layer.weight_mask != 0]
    return float(survivors.std()) if survivors.size else 0.0


def threshold_prune(model, quality, std_of: StdOf | str = StdOf.SURVIVING,
                    dense_std: dict | None = None) -> Thresholds:
    """Prune each layer at ``threshold = quality x std`` (Sec. 4); return the
    `Thresholds` applied, ``{name: threshold}``, which also say which std (``.std_of``).

    ``quality`` is one number or a per-layer dict with a ``'*'`` default, e.g.
    ``{"fc1.weight": 1.3, "*": 1.0}``. ``std_of`` names the std (`StdOf`, or its string):

    - ``"surviving"`` (default, minprune's reading): the std of the weights the layer still has.
    - ``"dense"``: the std of the dense, unpruned weights, fixed once. Pass ``dense_std``
      (``{name: std}``, recorded before the first round with :func:`layer_std`) once a layer is
      pruned.
    """
    if std_of not in STD_OF:
        raise ValueError(f"std_of must be one of {[str(kind) for kind in STD_OF]}, "
                         f"got {std_of!r}")
    std_of = StdOf(std_of)
    layers = layers_by_weight_name(model)
    qualities = resolve_per_layer(quality, layers, "quality", check_quality)
    stds = {}
    for name, layer in layers.items():
        if std_of == StdOf.DENSE and dense_std is not None:
            if name not in dense_std:
                raise ValueError(f"dense_std has no entry for {name!r}")
            stds[name] = dense_std[name]
        elif std_of == StdOf.DENSE and np.any(layer.weight_mask == 0):
            raise ValueError(
                f"std_of='dense': {name!r} is already pruned, so its dense std is gone; pass "
                "dense_std recorded before the first round"
            )
        else:
            stds[name] = layer_std(layer)
    thresholds = {name: qualities[name] * stds[name] for name in layers}
    for name, layer in layers.items():
        prune_below(layer, thresholds[name])
    return Thresholds(thresholds, std_of)


def magnitude_threshold(weights: np.ndarray, keep_ratio: float) -> float:
    """The magnitude at which keeping ``|w| >= threshold`` keeps ``keep_ratio`` of ``weights``."""
    magnitudes = np.sort(np.abs(weights).ravel())
    if magnitudes.size == 0:
        return 0.0
    n_pruned = int(round((1.0 - keep_ratio) * magnitudes.size))
    if n_pruned <= 0:
        return 0.0
    if n_pruned >= magnitudes.size:
        return float(np.inf)
    return float(magnitudes[n_pruned])


def largest(values: np.ndarray, k: int, threshold=None) -> np.ndarray:
    """A boolean array marking the ``k`` largest of the flat ``values`` (equal values in index
    order), in linear time; ``threshold`` is the k-th largest if the caller has it already."""
    if threshold is None:
        threshold = np.partition(values, values.size - k)[values.size - k]
    keep = values > threshold
    ties = np.flatnonzero(values == threshold)  # the first ones fill up to k
    keep[ties[: k - int(np.count_nonzero(keep))]] = True
    return keep


def keep_ratio_prune(model, keep_ratio) -> dict:
    """Keep the largest-magnitude ``keep_ratio`` of each layer's weights (counted over the whole
    layer; weights already pruned count as the smallest; equal magnitudes are kept in index
    order). Return ``{name: threshold}``, the smallest magnitude kept.

    ``keep_ratio`` is a fraction of the layer's *original* weights, pruned ones included, not of
    its survivors: it is the density the layer ends at. Calling it twice with 0.5 leaves 50%
    (the second call prunes nothing); a layer already below ``keep_ratio`` stays as it is. To
    prune in rounds, give falling ratios (`minprune.prune.rounds.rounds_to`)."""
    layers = layers_by_weight_name(model)
    ratios = resolve_per_layer(keep_ratio, layers, "keep_ratio", check_keep_ratio)
    thresholds = {}
    for name, layer in layers.items():
        magnitudes = np.abs(layer.weight.data * layer.weight_mask).ravel()
        kept_now = int(np.count_nonzero(layer.weight_mask))
        n_keep = min(int(round(ratios[name] * magnitudes.size)), kept_now)
        if n_keep == 0:
            set_mask(layer, np.zeros(layer.weight.shape, dtype=np.float32))
            thresholds[name] = np.inf
            continue
        # The n_keep-th largest magnitude, in linear time (np.partition, not a sort).
        threshold = np.partition(magnitudes, magnitudes.size - n_keep)[magnitudes.size - n_keep]
        thresholds[name] = float(threshold)
        if n_keep == kept_now and threshold > 0:  # every surviving weight stays
            layer.weight.data *= layer.weight_mask  # as set_mask would: pruned weights are 0
            continue
        keep = largest(magnitudes, n_keep, threshold)
        set_mask(layer, keep.reshape(layer.weight.shape) * (layer.weight_mask != 0))
    return thresholds


def l1_unstructured(model, amount) -> dict:
    """PyTorch's name: prune the fraction ``amount`` (per layer, or a per-layer dict) of smallest
    |w|. ``amount`` counts the layer's weights, so ``amount=0.9`` leaves 10% of them."""
    if not isinstance(amount, dict):
        amount = {"*": amount}
    for name, value in amount.items():
        if not isinstance(value, int | float | np.number) or not 0 <= value < 1:
            raise ValueError(f"amount for {name!r} must be in [0, 1), got {value!r}")
    return keep_ratio_prune(model, {name: 1.0 - value for name, value in amount.items()})


def global_unstructured(model, amount: float) -> float:
    """Prune the fraction ``amount`` of smallest-magnitude weights across all prunable layers with
    one threshold; return it. Not the paper's method (it prunes per layer): for comparison."""
    if not isinstance(amount, int | float | np.number) or not 0 <= amount < 1:
        raise ValueError(f"amount must be in [0, 1), got {amount!r}")
    layers = layers_by_weight_name(model)
    everything = np.concatenate(
        [(layer.weight.data * layer.weight_mask).ravel() for layer in layers.values()]
    )
    threshold = magnitude_threshold(everything, 1.0 - amount)
    for layer in layers.values():
        prune_below(layer, threshold)
    return threshold
