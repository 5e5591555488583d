"""Per-layer keep ratios for a whole-network compression: how a size is shared among layers.

Han et al. choose each layer's threshold from its sensitivity (Sec. 5, Fig. 6), which ends at
Table 2's / Table 3's keep ratios (fc1 8%, fc2 9%, fc3 26% for LeNet-300-100 at 12x). To aim at
another compression one scales them all by one factor -- or shifts weight toward the small
layers, which cost few parameters and are the most sensitive (Fig. 6; Sparse VD's LeNet-300-100
at 68x keeps fc3 at 38%, fc1 at 1.1%). `keep_ratios_for_compression` does both with one
exponent:

    keep_l = min(1, f x base_l x (n_largest / n_l) ^ exponent),

n_l the layer's weight count, f found by bisection so that the network's compression (every
weight and bias before, the kept weights and every bias after -- Table 1's count,
`minprune.prune.summary_row`) is at least the one asked for, within one weight of it. Exponent 0
scales the base ratios uniformly; larger exponents keep the small layers denser (Evci et al.
2020's Erdos-Renyi rule is of this family). A minprune helper, not the paper's.
"""

from __future__ import annotations

import numpy as np

from minprune.prune.masks import layers_by_weight_name

__all__ = ["keep_ratios_for_compression", "compression_of"]


def compression_of(model, keep_ratios: dict) -> float:
    """The compression of ``model`` pruned to ``keep_ratios`` (``{weight name: fraction}``,
    each layer keeping ``round(fraction x size)`` weights, as `keep_ratio_prune` does)."""
    layers = layers_by_weight_name(model)
    before = sum(parameter.data.size for _, parameter in model.named_parameters())
    pruned_away = sum(layer.weight.data.size - int(round(keep_ratios[name] *
                                                         layer.weight.data.size))
                      for name, layer in layers.items())
    return before / (before - pruned_away)


def keep_ratios_for_compression(model, compression: float, base: dict,
                                exponent: float = 0.0) -> dict:
    """Per-layer keep ratios ``{weight name: fraction}`` that prune ``model`` to
    ``compression`` (see the module docstring): ``base`` ratios times one factor, times
    (largest layer's size / the layer's size) ^ ``exponent``, each at most 1."""
    layers = layers_by_weight_name(model)
    if set(base) != set(layers):
        raise ValueError(f"keep_ratios_for_compression: base ratios name {sorted(base)}, the "
                         f"model's prunable layers are {sorted(layers)}")
    if not isinstance(exponent, int | float) or not np.isfinite(exponent) or exponent < 0:
        raise ValueError(f"keep_ratios_for_compression: exponent must be a finite number >= 0, "
                         f"got {exponent!r}")
    sizes = {name: layer.weight.data.size for name, layer in layers.items()}
    largest = max(sizes.values())
    shares = {name: base[name] * (largest / sizes[name]) ** exponent for name in layers}
    most = compression_of(model, dict.fromkeys(layers, 1.0))
    least = compression_of(model, dict.fromkeys(layers, 0.0))
    if not isinstance(compression, int | float) or not most <= compression < least:
        raise ValueError(f"keep_ratios_for_compression: compression must be in [{most:.3g}, "
                         f"{least:.4g}) for this model (its biases are never pruned), got "
                         f"{compression!r}")

    def ratios(factor: float) -> dict:
        return {name: min(1.0, factor * share) for name, share in shares.items()}

    low, high = 0.0, 1.0 / min(shares.values())  # factor high keeps every weight
    for _ in range(60):  # compression falls as the factor grows
        middle = 0.5 * (low + high)
        if compression_of(model, ratios(middle)) >= compression:
            low = middle
        else:
            high = middle
    counts = {name: int(round(ratio * sizes[name])) for name, ratio in ratios(low).items()}
    # At least the compression asked for, within one weight; each ratio a whole count of weights
    # over the layer's size, so that any rounding of ratio x size gives that count.
    return {name: counts[name] / sizes[name] for name in layers}
