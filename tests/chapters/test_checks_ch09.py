"""Chapter 9's checks (chapters/checks/ch09.py) pass the reference answers and refuse plausible
wrong ones, each with a hint that names the mistake."""

import heapq

import numpy as np
import pytest
from checks import ch09

# ---- Exercise 1: k-means with linear initialisation ------------------------------------------


def kmeans_1d(weights, bits):
    weights = np.asarray(weights, dtype=np.float64)
    centroids = np.linspace(weights.min(), weights.max(), 2 ** bits)
    assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    while True:
        for k in range(centroids.size):
            if np.any(assignments == k):
                centroids[k] = weights[assignments == k].mean()
        again = np.abs(weights[:, None] - centroids).argmin(axis=1)
        if np.array_equal(again, assignments):
            return centroids, assignments
        assignments = again


def linear_only(weights, bits):
    centroids = np.linspace(np.min(weights), np.max(weights), 2 ** bits)
    return centroids, np.abs(np.asarray(weights)[:, None] - centroids).argmin(axis=1)


def random_start(weights, bits):
    weights = np.asarray(weights, dtype=np.float64)
    centroids = np.sort(np.random.default_rng(0).choice(weights, 2 ** bits, replace=False))
    assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    for _ in range(100):
        for k in range(centroids.size):
            if np.any(assignments == k):
                centroids[k] = weights[assignments == k].mean()
        assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    return centroids, assignments


def empty_cluster_nan(weights, bits):
    weights = np.asarray(weights, dtype=np.float64)
    centroids = np.linspace(weights.min(), weights.max(), 2 ** bits)
    assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    for _ in range(100):
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = np.array([weights[assignments == k].sum() / (assignments == k).sum()
                                  for k in range(centroids.size)])
        assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    return centroids, assignments


def stale_assignments(weights, bits):
    weights = np.asarray(weights, dtype=np.float64)
    centroids = np.linspace(weights.min(), weights.max(), 2 ** bits)
    assignments = np.abs(weights[:, None] - centroids).argmin(axis=1)
    for k in range(centroids.size):  # one update, no reassignment
        if np.any(assignments == k):
            centroids[k] = weights[assignments == k].mean()
    return centroids, np.zeros(weights.size, dtype=int)


def bits_as_clusters(weights, bits):
    return kmeans_1d(weights, 1 if bits == 2 else bits)  # 2 clusters, not 2**2


def test_exercise_1_passes_the_reference(capsys):
    ch09.exercise_1(kmeans_1d)
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch09.exercise_1(lambda weights, bits: None)


@pytest.mark.parametrize("wrong, hint", [
    (linear_only, "still the linear initialisation"),
    (random_start, "linear initialisation"),
    (empty_cluster_nan, "empty cluster"),
    (stale_assignments, "nearest centroid"),
    (bits_as_clusters, "2\\*\\*2 = 4"),
])
def test_exercise_1_refuses_wrong_answers(fails_with_hint, wrong, hint):
    assert __import__("re").search(hint, fails_with_hint(ch09.exercise_1, wrong))


# ---- Exercise 2: Eq. 3 ------------------------------------------------------------------------


def centroid_gradient(weight_grad, mask, assignments, clusters):
    kept = np.asarray(weight_grad).reshape(-1)[np.flatnonzero(mask)]
    return np.bincount(assignments, weights=kept, minlength=clusters)


def mean_gradient(weight_grad, mask, assignments, clusters):
    total = centroid_gradient(weight_grad, mask, assignments, clusters)
    return total / np.maximum(np.bincount(assignments, minlength=clusters), 1)


def short_output(weight_grad, mask, assignments, clusters):
    kept = np.asarray(weight_grad).reshape(-1)[np.flatnonzero(mask)]
    return np.bincount(assignments, weights=kept)  # no minlength: empty last clusters vanish


def all_weights(weight_grad, mask, assignments, clusters):
    flat = np.asarray(weight_grad).reshape(-1)  # pruned positions read as if they were kept
    return np.bincount(assignments, weights=flat[:assignments.size], minlength=clusters)


def test_exercise_2_passes_the_reference(capsys):
    ch09.exercise_2(centroid_gradient)
    assert "Exercise 2: correct" in capsys.readouterr().out


def test_exercise_2_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch09.exercise_2(lambda *args: None)


@pytest.mark.parametrize("wrong, hint", [
    (mean_gradient, "sums them"),
    (short_output, "one gradient per centroid"),
    (all_weights, "flatnonzero"),
])
def test_exercise_2_refuses_wrong_answers(fails_with_hint, wrong, hint):
    assert hint in fails_with_hint(ch09.exercise_2, wrong)


# ---- Exercise 3: Huffman code lengths ---------------------------------------------------------


def huffman_lengths(counts):
    counts = np.asarray(counts)
    lengths = np.zeros(counts.size, dtype=int)
    heap = [(int(c), s, [s]) for s, c in enumerate(counts) if c > 0]
    if len(heap) == 1:
        lengths[heap[0][2]] = 1
        return lengths
    heapq.heapify(heap)
    while len(heap) > 1:
        a, tie, left = heapq.heappop(heap)
        b, _, right = heapq.heappop(heap)
        lengths[left + right] += 1
        heapq.heappush(heap, (a + b, tie, left + right))
    return lengths


def shannon(counts):
    counts = np.asarray(counts, dtype=float)
    out = np.zeros(counts.size, dtype=int)
    used = counts > 0
    out[used] = np.ceil(-np.log2(counts[used] / counts.sum()))
    return out


def fixed_width(counts):
    counts = np.asarray(counts)
    width = max(1, int(np.ceil(np.log2(max(2, np.count_nonzero(counts))))))
    return np.where(counts > 0, width, 0)


def most_frequent_longest(counts):
    lengths = huffman_lengths(counts)
    order = np.argsort(np.asarray(counts), kind="stable")
    used = [s for s in order if counts[s] > 0]
    out = np.zeros_like(lengths)
    out[used] = np.sort(lengths[used])  # shortest codes to the rarest symbols
    return out


def too_short(counts):
    return np.where(np.asarray(counts) > 0, 1, 0)


def unused_get_codes(counts):
    return np.maximum(huffman_lengths(counts), 1)


def test_exercise_3_passes_the_reference(capsys):
    ch09.exercise_3(huffman_lengths)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch09.exercise_3(lambda counts: None)


@pytest.mark.parametrize("wrong, hint", [
    (shannon, "Shannon"),
    (fixed_width, "least"),
    (most_frequent_longest, "least"),
    (too_short, "Kraft"),
    (unused_get_codes, "never occurs"),
])
def test_exercise_3_refuses_wrong_answers(fails_with_hint, wrong, hint):
    assert hint in fails_with_hint(ch09.exercise_3, wrong)
