"""The pruning rule at its edge: |w| < threshold goes, |w| == threshold stays (Han et al. Sec. 3),
and the criteria built on it prune exactly the count they promise."""

import re

import numpy as np
import pytest

import minprune
from minprune import nn, prune
from minprune.prune.masks import prune_below, resolve_per_layer, set_mask


def _linear_with(weights):
    layer = nn.Linear(len(weights), 1)
    layer.weight.data = np.asarray([weights], dtype=np.float32)
    return layer


def test_a_weight_exactly_on_the_threshold_is_kept():
    layer = _linear_with([0.5, -0.5, 0.25, 1.0, -0.125])
    prune_below(layer, 0.5)
    np.testing.assert_array_equal(layer.weight_mask, [[1, 1, 0, 1, 0]])
    np.testing.assert_array_equal(layer.weight.data, [[0.5, -0.5, 0.0, 1.0, 0.0]])


def test_pruned_weights_stay_pruned_when_the_threshold_falls():
    layer = _linear_with([0.5, -0.5, 0.25, 1.0])
    prune_below(layer, 0.75)
    prune_below(layer, 0.1)
    np.testing.assert_array_equal(layer.weight_mask, [[0, 0, 0, 1]])


def test_global_unstructured_prunes_exactly_the_amount_asked():
    minprune.manual_seed(0)
    model = minprune.models.lenet_300_100()
    total = sum(layer.weight.data.size for layer in prune.layers_by_weight_name(model).values())
    for amount in (0.25, 0.9):
        minprune.manual_seed(0)
        model = minprune.models.lenet_300_100()
        threshold = prune.global_unstructured(model, amount)
        kept = sum(int(np.count_nonzero(layer.weight_mask))
                   for layer in prune.layers_by_weight_name(model).values())
        assert kept == total - int(round(amount * total))
        # the smallest survivor sits exactly on the threshold: the rule keeps ties
        smallest = min(np.abs(layer.weight.data[layer.weight_mask != 0]).min()
                       for layer in prune.layers_by_weight_name(model).values())
        assert smallest == np.float32(threshold)


def test_keep_ratio_prune_keeps_exactly_its_share_of_each_layer():
    minprune.manual_seed(1)
    model = minprune.models.lenet_300_100()
    prune.keep_ratio_prune(model, 0.1)
    for layer in prune.layers_by_weight_name(model).values():
        assert int(np.count_nonzero(layer.weight_mask)) == int(round(0.1 * layer.weight.data.size))


def test_remove_bakes_the_masks_into_the_weights_and_resets_them():
    minprune.manual_seed(2)
    model = minprune.models.lenet_300_100()
    prune.keep_ratio_prune(model, 0.3)
    pruned = {name: layer.weight.data.copy()
              for name, layer in prune.layers_by_weight_name(model).items()}
    prune.remove(model)
    assert not prune.is_pruned(model)
    for name, layer in prune.layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight.data, pruned[name])
        np.testing.assert_array_equal(layer.weight_mask, np.ones_like(pruned[name]))


def test_global_unstructured_on_a_pruned_model_counts_the_pruned_as_smallest():
    minprune.manual_seed(3)
    model = minprune.models.lenet_300_100()
    prune.keep_ratio_prune(model, 0.5)
    total = sum(layer.weight.data.size for layer in prune.layers_by_weight_name(model).values())
    prune.global_unstructured(model, 0.75)
    kept = sum(int(np.count_nonzero(layer.weight_mask))
               for layer in prune.layers_by_weight_name(model).values())
    assert kept == total - int(round(0.75 * total))


def test_global_unstructured_amount_zero_prunes_nothing_and_bad_amounts_are_named():
    minprune.manual_seed(4)
    model = minprune.models.lenet_300_100()
    assert prune.global_unstructured(model, 0.0) == 0.0
    assert not prune.is_pruned(model)
    for amount in (1.0, 1.5, -0.1, "0.5"):
        with pytest.raises(ValueError, match=r"amount must be in \[0, 1\), got"):
            prune.global_unstructured(model, amount)


def test_a_model_that_is_one_layer_calls_its_weight_weight():
    """A bare Linear has no dotted name: its weight is "weight", not ".weight"."""
    layer = nn.Linear(4, 2)
    assert prune.layers_by_weight_name(layer) == {"weight": layer}
    assert list(prune.threshold_prune(layer, {"weight": 1.0})) == ["weight"]


def test_resolve_per_layer_without_a_check_takes_any_value():
    """``check`` is optional: without one every value passes through as given."""
    assert resolve_per_layer({"a": "any", "*": None}, ["a", "b"], "setting") == {"a": "any",
                                                                                  "b": None}


def test_a_mask_is_float32_so_the_masked_forward_stays_float32():
    """A mask given as bools is kept as float32 1/0, so weight * weight_mask stays in the
    weights' precision and the saved mask is the weights' size."""
    minprune.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3))
    set_mask(model[0], np.arange(18).reshape(3, 6) % 2 == 0)
    assert model[0].weight_mask.dtype == np.float32
    assert model(minprune.Tensor(np.ones((2, 6), dtype=np.float32))).data.dtype == np.float32
    assert model.state_dict()["0.weight_mask"].dtype == np.float32


def _check_positive(value):
    return None if value > 0 else f"must be > 0, got {value!r}"


@pytest.mark.parametrize("call, message", [
    (lambda m: prune.layers_by_weight_name(nn.Sequential(nn.ReLU(), nn.Flatten())),
     "Sequential has no prunable layers (Linear or Conv2d weights)"),
    (lambda m: set_mask(m.fc1, np.ones((784, 300))),
     "mask for Linear 'fc1' has shape (784, 300), the weight has shape (300, 784)"),
    (lambda m: set_mask(m.fc1, np.full((300, 784), 0.5)), "mask for 'fc1' must hold only 0 and 1"),
    (lambda m: resolve_per_layer({"fc9.weight": 1, "*": 1}, ["fc1.weight", "fc2.weight"], "rate"),
     "rate: 'fc9.weight' names no prunable layer; expected one of ['fc1.weight', 'fc2.weight'] "
     "or '*'"),
    (lambda m: resolve_per_layer({"fc1.weight": 1}, ["fc1.weight", "fc2.weight"], "rate"),
     "rate: no value for 'fc2.weight' and no '*' default"),
    (lambda m: resolve_per_layer({"fc2.weight": -2, "*": 1}, ["fc1.weight", "fc2.weight"], "rate",
                                 _check_positive),
     "rate for 'fc2.weight': must be > 0, got -2"),
])
def test_mask_errors_name_the_layer_the_value_and_what_was_expected(call, message):
    minprune.manual_seed(0)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call(minprune.models.lenet_300_100())
