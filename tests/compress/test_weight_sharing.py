"""Weight sharing by k-means (Deep Compression Sec. 3, 3.1): linear initialisation, Lloyd's
iterations against a brute-force optimum, masks untouched."""

import itertools

import numpy as np
import pytest

import minprune as mp
from minprune.compress.weight_sharing import (
    kmeans,
    linear_centroids,
    nearest_centroid,
    share_weights,
)


def test_linear_initialisation_spans_min_to_max():
    assert linear_centroids([-1.0, 0.2, 3.0], 2).tolist() == pytest.approx([-1, 1 / 3, 5 / 3, 3])


def test_nearest_centroid_sends_ties_to_the_lower_one():
    assert nearest_centroid([0.5, 0.49, 0.51], [0.0, 1.0]).tolist() == [0, 0, 1]


def _best_partition_cost(weights, k):
    """Brute force: 1-D optimal clusters are contiguous runs of the sorted weights."""
    w = np.sort(weights)
    best = np.inf
    for cuts in itertools.combinations(range(1, w.size), k - 1):
        parts = np.split(w, cuts)
        best = min(best, sum(((p - p.mean()) ** 2).sum() for p in parts))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_reaches_a_local_optimum_near_the_best(seed):
    weights = np.random.default_rng(seed).standard_normal(12)
    centroids, assignments = kmeans(weights, 2)
    # converged: every weight at its nearest centroid, every centroid its weights' mean
    np.testing.assert_array_equal(assignments, nearest_centroid(weights, centroids))
    for k in np.unique(assignments):
        assert centroids[k] == pytest.approx(weights[assignments == k].mean())
    cost = sum((weights - centroids[assignments]) ** 2)
    assert cost <= 1.5 * _best_partition_cost(weights, 4) + 1e-12


def test_an_empty_cluster_keeps_its_centroid():
    centroids, assignments = kmeans(np.array([0.0, 0.0, 0.0, 1.0]), 2)
    assert centroids.size == 4 and set(assignments.tolist()) == {0, 3}


def test_share_weights_keeps_masks_and_gives_each_layer_its_values():
    mp.manual_seed(0)
    model = mp.models.lenet_300_100()
    mp.prune.keep_ratio_prune(model, {"*": 0.1})
    masks = {n: layer.weight_mask.copy()
             for n, layer in mp.prune.layers_by_weight_name(model).items()}
    codebooks = share_weights(model, {"fc1.weight": 3, "*": 2})
    assert {n: c.bits for n, c in codebooks.items()} == {"fc1.weight": 3, "fc2.weight": 2,
                                                        "fc3.weight": 2}
    for name, layer in mp.prune.layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight_mask, masks[name])
        survivors = layer.weight.data[masks[name] != 0]
        assert set(np.unique(survivors)) <= set(codebooks[name].centroids.tolist())
        assert not layer.weight.data[masks[name] == 0].any()


@pytest.mark.parametrize("bits, message", [
    ({"fc9.weight": 2}, r"\['fc9.weight'\] name no layer"),
    ({"*": 0}, r"bits must be an int in 1\.\.8"),
    ({"*": 9}, r"bits must be an int in 1\.\.8"),
    ("4", "bits must be an int or a dict"),
])
def test_bad_bits_are_refused(bits, message):
    with pytest.raises(ValueError, match=message):
        share_weights(mp.models.lenet_300_100(), bits)
