"""Masks and pruning criteria: the paper's threshold rule, keep ratios, global, bad input."""

import re
import warnings

import numpy as np
import pytest

import minprune
from minprune import nn, prune
from minprune.nn import models
from minprune.prune.criteria import check_quality, magnitude_threshold


def lenet(seed=0):
    minprune.manual_seed(seed)
    return models.lenet_300_100()


def test_threshold_is_quality_times_the_layer_std():
    model = lenet()
    weights = {name: layer.weight.data.copy()
               for name, layer in prune.layers_by_weight_name(model).items()}
    thresholds = prune.threshold_prune(model, {"fc1.weight": 1.3, "*": 0.5})
    for name, layer in prune.layers_by_weight_name(model).items():
        quality = 1.3 if name == "fc1.weight" else 0.5
        expected = quality * weights[name].std()
        assert thresholds[name] == pytest.approx(expected, rel=1e-6)
        np.testing.assert_array_equal(layer.weight_mask, np.abs(weights[name]) >= expected)
        assert np.all(layer.weight.data[layer.weight_mask == 0] == 0)


def test_surviving_std_grows_the_threshold_dense_std_keeps_it():
    model = lenet()
    first = prune.threshold_prune(model, 1.0)
    second = prune.threshold_prune(model, 1.0)  # std of the survivors is larger now
    assert all(second[name] > first[name] for name in first)

    model = lenet()
    dense = {name: prune.layer_std(layer)
             for name, layer in prune.layers_by_weight_name(model).items()}
    first = prune.threshold_prune(model, 1.0, std_of="dense")
    with pytest.raises(ValueError, match="already pruned.*pass dense_std"):
        prune.threshold_prune(model, 1.0, std_of="dense")
    second = prune.threshold_prune(model, 1.0, std_of="dense", dense_std=dense)
    assert second == pytest.approx(first)


def gaussian_layer(seed=0, size=1000):
    """One Linear layer whose weights are a seeded standard Gaussian."""
    model = nn.Sequential({"fc": nn.Linear(size, size)})
    model.fc.weight.data = np.random.default_rng(seed).standard_normal(
        (size, size)).astype(np.float32)
    return model


def test_quality_one_three_times_keeps_31_11_4_percent_with_the_survivors_std_31_with_dense():
    # A Gaussian layer, quality 1.0 three times, no retraining: with the survivors' std (the
    # default, minprune's reading) the threshold grows as the small weights go.
    model = gaussian_layer()
    kept = []
    for _ in range(3):
        thresholds = prune.threshold_prune(model, 1.0)
        assert thresholds.std_of == prune.StdOf.SURVIVING == "surviving"
        kept.append(prune.density(model))
    assert kept == pytest.approx([0.317, 0.112, 0.040], abs=0.001)

    # With the dense std (Distiller's reading) the threshold stays where it was: 31.7% each time.
    model = gaussian_layer()
    dense = {"fc.weight": prune.layer_std(model.fc)}
    kept = []
    for _ in range(3):
        thresholds = prune.threshold_prune(model, 1.0, std_of=prune.StdOf.DENSE, dense_std=dense)
        assert thresholds.std_of == "dense"
        assert dict(thresholds) == pytest.approx(dense)
        kept.append(prune.density(model))
    assert kept == pytest.approx([0.317] * 3, abs=0.001)


def test_pruning_never_revives_a_pruned_weight():
    model = lenet()
    prune.keep_ratio_prune(model, 0.5)
    before = model.fc1.weight_mask.copy()
    model.fc1.weight.data[before == 0] = 10.0  # a pruned weight that now looks large
    prune.threshold_prune(model, 0.1)
    assert np.all(model.fc1.weight_mask[before == 0] == 0)


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.08, 0.001])
def test_keep_ratio_keeps_that_fraction_of_the_largest_weights(ratio):
    model = lenet()
    original = model.fc1.weight.data.copy()
    prune.keep_ratio_prune(model, {"fc1.weight": ratio, "*": 1.0})
    assert prune.layer_density(model.fc1) == pytest.approx(ratio, abs=1 / original.size)
    kept = np.abs(original[model.fc1.weight_mask == 1])
    dropped = np.abs(original[model.fc1.weight_mask == 0])
    assert dropped.size == 0 or kept.min() >= dropped.max()
    assert prune.layer_density(model.fc2) == 1.0


def test_l1_unstructured_and_global_and_bookkeeping():
    model = lenet()
    assert not prune.is_pruned(model)
    prune.l1_unstructured(model, amount=0.9)
    for layer in prune.layers_by_weight_name(model).values():
        assert prune.layer_density(layer) == pytest.approx(0.1, abs=0.001)
    assert prune.sparsity(model) == pytest.approx(0.9, abs=0.001) and prune.is_pruned(model)

    model = lenet()
    threshold = prune.global_unstructured(model, 0.8)
    assert prune.density(model) == pytest.approx(0.2, abs=0.001)
    for layer in prune.layers_by_weight_name(model).values():
        assert np.all(np.abs(layer.weight.data[layer.weight_mask == 1]) >= threshold)


def test_a_keep_ratio_is_a_fraction_of_the_original_weights_not_of_the_survivors():
    model = lenet()
    prune.keep_ratio_prune(model, 0.5)
    prune.keep_ratio_prune(model, 0.5)  # the layer already keeps 50%: nothing more goes
    assert prune.density(model) == pytest.approx(0.5, abs=1e-4)
    prune.keep_ratio_prune(model, 0.8)  # nor does a higher ratio bring anything back
    assert prune.density(model) == pytest.approx(0.5, abs=1e-4)
    prune.keep_ratio_prune(model, 0.25)
    assert prune.layer_density(model.fc1) == pytest.approx(0.25, abs=1e-4)


def test_remove_bakes_masks_into_weights():
    model = lenet()
    prune.keep_ratio_prune(model, 0.3)
    pruned = model.fc2.weight_mask == 0
    prune.remove(model)
    assert not prune.is_pruned(model)
    assert np.all(model.fc2.weight.data[pruned] == 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: prune.threshold_prune(m, 0.0), "quality must be a number > 0, got 0.0"),
        (lambda m: prune.threshold_prune(m, {"fc1.weight": -1, "*": 1}), "'fc1.weight'"),
        (lambda m: prune.threshold_prune(m, {"fc9.weight": 1, "*": 1}), "'fc9.weight' names no"),
        (lambda m: prune.threshold_prune(m, {"fc1.weight": 1}), "no value for 'fc2.weight'"),
        (lambda m: prune.keep_ratio_prune(m, 1.5), "keep ratio must be in \\(0, 1\\], got 1.5"),
        (lambda m: prune.keep_ratio_prune(m, 0.0), "keep ratio must be in"),
        (lambda m: prune.threshold_prune(m, 1.0, std_of="median"), "std_of must be one of"),
        (lambda m: prune.set_mask(m.fc1, np.ones((784, 300))), "has shape \\(784, 300\\)"),
        (lambda m: prune.l1_unstructured(m, 1.0), "amount for '\\*' must be in"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(call, message):
    model = lenet()
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        call(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_model_without_layers_by_weight_name_is_refused():
    with pytest.raises(ValueError, match="has no prunable layers"):
        prune.threshold_prune(nn.Sequential(nn.ReLU(), nn.Flatten()), 1.0)


def _keep_ratio_by_stable_sort(weights, mask, ratio):
    """The reference: sort every magnitude (ties in index order), keep the first n_keep."""
    magnitudes = np.abs(weights * mask).ravel()
    order = np.argsort(-magnitudes, kind="stable")
    n_keep = min(int(round(ratio * magnitudes.size)), int(np.count_nonzero(mask)))
    keep = np.zeros(magnitudes.size, dtype=np.float32)
    keep[order[:n_keep]] = 1.0
    threshold = float(magnitudes[order[n_keep - 1]]) if n_keep else np.inf
    return keep.reshape(weights.shape) * (mask != 0), threshold


@pytest.mark.parametrize("seed", range(12))
def test_keep_ratio_prune_equals_a_stable_sort_ties_and_all(seed):
    """keep_ratio_prune finds the cut in linear time; it must keep exactly what sorting keeps."""
    rng = np.random.default_rng(seed)
    layer = nn.Linear(40, 30)
    weights = rng.standard_normal((30, 40)).astype(np.float32)
    if seed % 2:
        weights = np.round(weights * 4) / 4  # many equal magnitudes
    mask = (rng.random((30, 40)) < rng.choice([1.0, 0.6])).astype(np.float32)
    layer.weight.data[...] = weights * mask
    layer.weight_mask = mask
    model = nn.Sequential(layer)
    for ratio in (1.0, 0.5, 0.13, 1 / 1200, 0.0001):
        expected_mask, expected_threshold = _keep_ratio_by_stable_sort(
            layer.weight.data, layer.weight_mask, ratio)
        threshold = prune.keep_ratio_prune(model, ratio)["0.weight"]
        np.testing.assert_array_equal(layer.weight_mask, expected_mask)
        assert threshold == expected_threshold


@pytest.mark.parametrize("quality, valid", [
    (1, True), (0.5, True), (np.float32(2.0), True),
    (0, False), (-1.0, False), (float("inf"), False), (float("nan"), False), ("1.0", False),
    (None, False),
])
def test_a_quality_is_a_finite_number_above_zero(quality, valid):
    """quality x std is a threshold (Sec. 3): an infinite quality would prune everything."""
    expected = None if valid else f"quality must be a number > 0, got {quality!r}"
    assert check_quality(quality) == expected


def test_a_fully_pruned_layer_has_std_zero_and_prunes_nothing_more():
    """No weights survive, so their std is 0 (not NaN with a warning); the threshold is 0."""
    model = lenet()
    prune.set_mask(model.fc2, np.zeros_like(model.fc2.weight_mask))
    assert prune.layer_std(model.fc2) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thresholds = prune.threshold_prune(model, 1.0)
    assert thresholds["fc2.weight"] == 0.0 and thresholds["fc1.weight"] > 0
    assert prune.layer_density(model.fc2) == 0.0


def test_a_layer_whose_keep_ratio_rounds_to_nothing_is_emptied_and_the_next_ones_still_pruned():
    """fc1 (235,200 weights) at 1e-7 keeps round(0.02) = 0 weights; fc2 and fc3 still get 50%."""
    model = lenet()
    thresholds = prune.keep_ratio_prune(model, {"fc1.weight": 1e-7, "*": 0.5})
    assert prune.layer_density(model.fc1) == 0.0 and thresholds["fc1.weight"] == np.inf
    assert not model.fc1.weight.data.any()
    assert prune.layer_density(model.fc2) == 0.5 and prune.layer_density(model.fc3) == 0.5
    assert list(thresholds) == ["fc1.weight", "fc2.weight", "fc3.weight"]


def test_l1_unstructured_amount_zero_prunes_nothing_of_that_layer():
    """amount is in [0, 1): 0 is allowed and leaves the layer dense, as in PyTorch."""
    model = lenet()
    prune.l1_unstructured(model, {"fc1.weight": 0.5, "*": 0.0})
    assert prune.layer_density(model.fc1) == 0.5
    assert prune.layer_density(model.fc2) == prune.layer_density(model.fc3) == 1.0


@pytest.mark.parametrize("weights, keep_ratio, expected", [
    ([], 0.5, 0.0),  # nothing to keep or prune
    ([5.0], 1.0, 0.0),  # keep everything: a threshold nothing is below
    ([5.0], 0.4, np.inf),  # round(0.6) = 1 weight pruned: all of them
    ([3.0, -1.0, 2.0, 4.0], 1.0, 0.0),
    ([3.0, -1.0, 2.0, 4.0], 0.75, 2.0),  # one pruned: |w| >= 2 keeps three
    ([3.0, -1.0, 2.0, 4.0], 0.5, 3.0),
    ([3.0, -1.0, 2.0, 4.0], 0.0, np.inf),  # all pruned
])
def test_magnitude_threshold_keeps_the_asked_share_at_every_edge(weights, keep_ratio, expected):
    weights = np.asarray(weights, dtype=np.float32)
    threshold = magnitude_threshold(weights, keep_ratio)
    assert threshold == expected
    assert np.count_nonzero(np.abs(weights) >= threshold) == round(keep_ratio * weights.size)


def _pruned_fc2(model):
    prune.keep_ratio_prune(model, {"fc2.weight": 0.5, "*": 1.0})


NAMES = "['fc1.weight', 'fc2.weight', 'fc3.weight']"


@pytest.mark.parametrize("call, message", [
    (lambda m: prune.threshold_prune(m, {"fc1.weight": -1, "*": 1}),
     "quality for 'fc1.weight': quality must be a number > 0, got -1"),
    (lambda m: prune.threshold_prune(m, float("inf")),
     "quality for 'fc1.weight': quality must be a number > 0, got inf"),
    (lambda m: prune.threshold_prune(m, {"fc9.weight": 1, "*": 1}),
     f"quality: 'fc9.weight' names no prunable layer; expected one of {NAMES} or '*'"),
    (lambda m: prune.threshold_prune(m, {"fc1.weight": 1}),
     "quality: no value for 'fc2.weight' and no '*' default"),
    (lambda m: prune.threshold_prune(m, 1.0, std_of="median"),
     "std_of must be one of ['surviving', 'dense'], got 'median'"),
    (lambda m: prune.threshold_prune(m, 1.0, std_of="dense", dense_std={"fc1.weight": 0.1}),
     "dense_std has no entry for 'fc2.weight'"),
    (lambda m: _pruned_fc2(m) or prune.threshold_prune(m, 1.0, std_of="dense"),
     "std_of='dense': 'fc2.weight' is already pruned, so its dense std is gone; pass dense_std "
     "recorded before the first round"),
    (lambda m: prune.keep_ratio_prune(m, {"fc2.weight": 1.5, "*": 0.5}),
     "keep_ratio for 'fc2.weight': keep ratio must be in (0, 1], got 1.5"),
    (lambda m: prune.keep_ratio_prune(m, {"fc4.weight": 0.5, "*": 0.5}),
     f"keep_ratio: 'fc4.weight' names no prunable layer; expected one of {NAMES} or '*'"),
    (lambda m: prune.keep_ratio_prune(m, {"fc1.weight": 0.5}),
     "keep_ratio: no value for 'fc2.weight' and no '*' default"),
    (lambda m: prune.l1_unstructured(m, {"fc1.weight": 1.0}),
     "amount for 'fc1.weight' must be in [0, 1), got 1.0"),
    (lambda m: prune.global_unstructured(m, -0.1), "amount must be in [0, 1), got -0.1"),
])
def test_criteria_errors_name_the_setting_the_layer_the_value_and_what_was_expected(call,
                                                                                   message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call(lenet())
