"""Weight sharing: each layer's surviving weights clustered into 2**bits shared values (Han, Mao &
Dally 2016, Sec. 3, "Trained Quantization and Weight Sharing").

"We use k-means clustering to identify the shared weights for each layer of a trained network,
so that all the weights that fall into the same cluster will share the same weight. Weights are
not shared across layers." For a layer with n surviving weights W = {w_1 .. w_n} and k = 2**bits
clusters C = {c_1 .. c_k}, k-means minimises the within-cluster sum of squares (their Eq. 2)::

    argmin_C  sum_i sum_{w in c_i} |w - c_i|^2

Centroid initialisation (their Sec. 3, "Initialization of Shared Weights"): linear -- k values
evenly spaced over [min, max] of the weights -- beats random (Forgy) and density-based
initialisation, because it keeps a few centroids out among the large weights, which are few but
matter most. minprune initialises linearly only.

A `Codebook` is one layer's result: ``centroids`` (float32, k) and, for each surviving weight in
flat C order, its cluster (``assignments``). Pruned weights get no cluster and stay pruned: the
mask is not touched (`share_weights` writes ``centroids[assignments]`` into the survivors only).

Departure: the paper runs k-means to convergence without saying how; here Lloyd's iterations
(assign each weight to its nearest centroid, move each centroid to its weights' mean) run until
no assignment changes, at most ``max_iterations`` times; an empty cluster keeps its centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minprune.prune.masks import layers_by_weight_name

__all__ = [
    "Codebook",
    "linear_centroids",
    "kmeans",
    "nearest_centroid",
    "share_layer",
    "share_weights",
    "apply_codebooks",
    "MAX_BITS",
]

MAX_BITS = 8  # at most 256 shared values per layer (Deep Compression: 8 bits for CONV)


@dataclass
class Codebook:
    """One layer's shared weights: the layer's ``bits``, its ``centroids`` (float32, 2**bits) and
    the cluster of each surviving weight (``assignments``, int64, in the order of
    ``np.flatnonzero(weight_mask)``)."""

    bits: int
    centroids: np.ndarray
    assignments: np.ndarray

    def values(self) -> np.ndarray:
        """The surviving weights as the shared values make them."""
        return self.centroids[self.assignments]


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not (
            1 <= bits <= MAX_BITS):
        raise ValueError(f"bits must be an int in 1..{MAX_BITS} (2 to {2 ** MAX_BITS} shared "
                         f"values), got {bits!r}")
    return int(bits)


def linear_centroids(weights, bits: int) -> np.ndarray:
    """2**bits centroids evenly spaced over [min, max] of ``weights`` (Sec. 3's linear
    initialisation), float64."""
    bits = _check_bits(bits)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.size == 0:
        return np.zeros(1 << bits)
    return np.linspace(weights.min(), weights.max(), 1 << bits)


def nearest_centroid(weights, centroids) -> np.ndarray:
    """Index of the nearest of ``centroids`` (sorted ascending) for each weight; a tie goes to
    the lower centroid."""
    centroids = np.asarray(centroids, dtype=np.float64)
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(midpoints, np.asarray(weights, dtype=np.float64), side="left")


def kmeans(weights, bits: int, max_iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids, assignments)``: 1-D k-means of ``weights`` with 2**bits clusters, started
    from `linear_centroids` (see the module docstring)."""
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    centroids = linear_centroids(weights, bits)
    assignments = nearest_centroid(weights, centroids)
    for _ in range(max_iterations):
        counts = np.bincount(assignments, minlength=centroids.size)
        sums = np.bincount(assignments, weights=weights, minlength=centroids.size)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        centroids.sort()  # means of contiguous intervals stay in order; sorting guards ties
        moved = nearest_centroid(weights, centroids)
        if np.array_equal(moved, assignments):
            break
        assignments = moved
    return centroids, assignments


def share_layer(layer, bits: int) -> Codebook:
    """Cluster ``layer``'s surviving weights into 2**bits shared values and write the shared
    values back into the layer (pruned weights stay 0 and pruned); return the `Codebook`."""
    survivors = np.flatnonzero(layer.weight_mask.reshape(-1))
    weights = layer.weight.data.reshape(-1)[survivors]
    centroids, assignments = kmeans(weights, bits)
    codebook = Codebook(int(bits), centroids.astype(np.float32), assignments.astype(np.int64))
    apply_codebooks({"": layer}, {"": codebook})
    return codebook


def apply_codebooks(layers: dict, codebooks: dict) -> None:
    """Write each codebook's shared values into its layer's surviving weights, in place."""
    for name, codebook in codebooks.items():
        layer = layers[name]
        survivors = np.flatnonzero(layer.weight_mask.reshape(-1))
        if survivors.size != codebook.assignments.size:
            raise ValueError(f"{name}: the codebook assigns {codebook.assignments.size} weights, "
                             f"the layer keeps {survivors.size}")
        np.put(layer.weight.data, survivors, codebook.values())


def share_weights(model, bits) -> dict[str, Codebook]:
    """Quantize every layer named in ``bits`` (``{"fc1.weight": 4, ...}``; ``{"*": 5}`` or an int
    for all) in place; return ``{weight name: Codebook}``. Unknown names are refused."""
    layers = layers_by_weight_name(model)
    if isinstance(bits, int | np.integer) and not isinstance(bits, bool):
        bits = {"*": int(bits)}
    if not isinstance(bits, dict):
        raise ValueError(f"share_weights: bits must be an int or a dict of layer names to ints, "
                         f"got {bits!r}")
    unknown = sorted(set(bits) - set(layers) - {"*"})
    if unknown:
        raise ValueError(f"share_weights: {unknown} name no layer; expected some of "
                         f"{sorted(layers)} or '*'")
    chosen = {name: bits.get(name, bits.get("*")) for name in layers}
    return {name: share_layer(layers[name], value)
            for name, value in chosen.items() if value is not None}
