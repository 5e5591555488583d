"""Checks for chapter 9, "Deep Compression: sharing, trained quantization and Huffman coding"
(``chapters/09_deep_compression.ipynb``).

Exercise 1: 1-D k-means with linear initialisation (Deep Compression Sec. 3). Exercise 2:
a centroid's gradient, the sum of its weights' gradients (Eq. 3). Exercise 3: Huffman code
lengths from symbol counts (Sec. 4) -- judged by what they cost, since equally good codes differ.
"""

from __future__ import annotations

import numpy as np

import minprune as mp
from checks import unanswered


def _weights(seed: int, n: int = 2_000) -> np.ndarray:
    """A pruned layer's survivors: two lobes with a hole around zero (the paper's Fig. 7)."""
    rng = np.random.default_rng(seed)
    lobe = np.abs(rng.standard_normal(n)) * 0.05 + 0.03
    return (lobe * rng.choice([-1.0, 1.0], n)).astype(np.float32)


def exercise_1(kmeans_1d) -> None:
    """``kmeans_1d(weights, bits) -> (centroids, assignments)``: k-means with 2**bits clusters
    started from centroids evenly spaced over [min, max], run until no assignment changes;
    compared with `minprune.compress.kmeans`."""
    weights = _weights(0)
    answer = kmeans_1d(weights, 2)
    unanswered(answer, "Exercise 1")
    centroids, assignments = (np.asarray(part) for part in answer)
    assert centroids.shape == (4,), (
        f"2 bits give 2**2 = 4 shared values; got centroids of shape {centroids.shape}")
    assert assignments.shape == weights.shape, (
        f"one cluster index per weight: expected shape {weights.shape}, got "
        f"{assignments.shape}")
    assert np.all(np.isfinite(centroids)), (
        "a centroid is NaN: an empty cluster must keep its centroid, not take the mean of "
        "nothing")
    linear = np.linspace(weights.min(), weights.max(), 4)
    assert not np.allclose(centroids, linear), (
        "the centroids are still the linear initialisation: move each to the mean of its "
        "weights, reassign, and repeat until nothing changes")
    nearest = np.abs(weights[:, None] - centroids[None, :]).argmin(axis=1)
    assert np.array_equal(centroids[assignments], centroids[nearest]), (
        "some weights are not assigned to their nearest centroid: after the last update, "
        "assign again (and stop only when no assignment changes)")
    for seed, bits in ((0, 2), (1, 3), (2, 1), (3, 4)):
        weights = _weights(seed, 500 + 300 * seed)
        expected, _ = mp.compress.kmeans(weights, bits)
        got, got_assignments = (np.asarray(part) for part in kmeans_1d(weights, bits))
        assert np.all(np.isfinite(got)), (
            f"bits={bits}: a centroid is NaN. The weights have a hole around zero, so a linearly "
            "placed centroid there starts empty: an empty cluster keeps its centroid, it does "
            "not take the mean of nothing")
        assert np.allclose(np.sort(got), expected, atol=1e-6), (
            f"bits={bits}: expected centroids {np.round(expected, 4)}, got "
            f"{np.round(np.sort(got), 4)}. Start from np.linspace(min, max, 2**bits) (Sec. 3: "
            "linear initialisation), not from random weights")
        assert np.allclose(got[got_assignments], expected[mp.compress.nearest_centroid(weights,
                                                                                  expected)],
                           atol=1e-6), f"bits={bits}: the assignments do not match the centroids"
    print("Exercise 1: correct")


def exercise_2(centroid_gradient) -> None:
    """``centroid_gradient(weight_grad, mask, assignments, clusters)``: Eq. 3, each centroid's
    gradient the sum of the gradients of the weights in its cluster; ``assignments`` lists the
    cluster of each kept weight in the order of ``np.flatnonzero(mask)``."""
    rng = np.random.default_rng(0)
    mask = (rng.random((6, 5)) < 0.5).astype(np.float32)
    weight_grad = (rng.standard_normal((6, 5)) * mask).astype(np.float32)
    kept = int(mask.sum())
    assignments = rng.integers(0, 4, kept)
    assignments[:4] = [0, 1, 2, 0]  # every cluster but 3 holds a weight; 3 may be empty
    answer = centroid_gradient(weight_grad, mask, assignments, 5)
    unanswered(answer, "Exercise 2")
    answer = np.asarray(answer, dtype=np.float64)
    expected = mp.compress.centroid_gradients(weight_grad, np.flatnonzero(mask), assignments, 5)
    assert answer.shape == (5,), (
        f"one gradient per centroid (5 clusters, even an empty one): got shape {answer.shape}")
    means = expected / np.maximum(np.bincount(assignments, minlength=5), 1)
    assert not np.allclose(answer, means), (
        "that is the mean of each cluster's gradients; Eq. 3 sums them")
    assert np.allclose(answer[4], 0.0), "cluster 4 holds no weight: its gradient is 0"
    assert np.allclose(answer, expected, atol=1e-6), (
        f"expected {np.round(expected, 4)}, got {np.round(answer, 4)}: take the gradients of "
        "the kept weights in np.flatnonzero(mask) order, and add each to its cluster")
    print("Exercise 2: correct")


def exercise_3(huffman_lengths) -> None:
    """``huffman_lengths(counts) -> lengths``: a Huffman code's length for each symbol (0 for a
    symbol with count 0). Judged by the bits the code spends, which every optimal code shares,
    and by Kraft's inequality (a prefix code with those lengths exists)."""
    cases = [np.array([45, 13, 12, 16, 9, 5]), np.array([900, 50, 30, 15, 5]),
             np.array([1, 1, 1, 1, 1, 1, 1, 1]), np.array([10, 0, 3, 0, 1]),
             np.array([2 ** k for k in range(12)]), np.array([7, 7])]
    answer = huffman_lengths(cases[0])
    unanswered(answer, "Exercise 3")
    for counts in cases:
        lengths = np.asarray(huffman_lengths(counts))
        assert lengths.shape == counts.shape, (
            f"one length per symbol: counts {counts.tolist()} gave shape {lengths.shape}")
        assert np.all(lengths[counts == 0] == 0), (
            f"counts {counts.tolist()}: a symbol that never occurs needs no codeword (length 0)")
        used = lengths[counts > 0].astype(float)
        assert np.all(used >= 1), f"counts {counts.tolist()}: every used symbol needs >= 1 bit"
        kraft = float(np.sum(2.0 ** -used))
        assert kraft <= 1 + 1e-12, (
            f"counts {counts.tolist()}: lengths {lengths.tolist()} break Kraft's inequality "
            f"(sum of 2^-length = {kraft:.3f} > 1): no prefix code has them")
        reference = mp.compress.code_lengths(counts)
        spent, best = int(np.dot(counts, lengths)), int(np.dot(counts, reference))
        assert spent >= best, "fewer bits than Huffman's? check the lengths"
        assert spent == best, (
            f"counts {counts.tolist()}: your code spends {spent} bits, Huffman's {best}. "
            + ("Rounding -log2(p) up (Shannon's code) is not optimal; merge the two rarest "
               "subtrees, again and again" if np.array_equal(
                   lengths[counts > 0], np.ceil(-np.log2(counts[counts > 0] / counts.sum())))
               else "Build the tree by joining the two *least* frequent subtrees each time; a "
                    "symbol's length is its depth"))
    print("Exercise 3: correct")
