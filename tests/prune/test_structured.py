"""Structured pruning (Li et al. 2017): L1 ranking, layers rebuilt smaller, the next layer's inputs
removed (conv -> conv, fc -> fc, conv -> flatten -> fc), outputs equal to the masked-filter model,
masks kept, and errors that name the layer."""

from collections import OrderedDict

import numpy as np
import pytest

import minprune
from minprune import nn, prune
from minprune.autograd.tensor import Tensor, no_grad
from minprune.nn import models
from minprune.prune import structured
from minprune.prune.structured_surgery import next_weighted_layer, remove_outputs


def outputs(model, x):
    model.eval()
    with no_grad():
        return model(Tensor(x)).data.astype(np.float64)


def random_biases(model, seed=1):
    """Biases of both signs, so that folding act(bias) of removed outputs really matters."""
    rng = np.random.default_rng(seed)
    for layer in prune.layers_by_weight_name(model).values():
        layer.bias.data[...] = rng.normal(size=layer.bias.shape)


def masked_filters(model, removals):
    """The reference: the removed outputs' filters masked to zero (biases kept), same layers."""
    reference = nn.copy_model(model)
    for name, removed in removals.items():
        layer = reference._modules[name]
        mask = np.array(layer.weight_mask)
        mask[removed] = 0
        prune.set_mask(layer, mask)
    return reference


def images(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def small_conv_net():
    """conv -> ReLU -> pool -> conv -> flatten -> fc: conv -> conv and conv -> flatten -> fc."""
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 6, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 8, 5), pool2=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc1=nn.Linear(8 * 4 * 4, 12), relu2=nn.ReLU(), fc2=nn.Linear(12, 10)))


def test_channel_norms_are_l1_of_the_masked_rows():
    minprune.manual_seed(0)
    layer = nn.Conv2d(2, 3, 3)
    mask = np.ones((3, 2, 3, 3), dtype=np.float32)
    mask[1, 0] = 0
    layer.weight_mask = mask
    expected = np.abs(layer.weight.data * mask).reshape(3, -1).sum(1)
    np.testing.assert_allclose(structured.channel_norms(layer), expected)
    layer.weight.data[...] = np.array([3.0, 1.0, 2.0], dtype=np.float32)[:, None, None, None]
    assert structured.weakest_channels(layer, 1).tolist() == [1]
    assert structured.weakest_channels(layer, 0.67).tolist() == [1, 2]


@pytest.mark.parametrize("build, name, removed", [
    (models.lenet5, "conv2", [0, 3, 7, 49]),  # conv2 -> pool -> flatten -> fc1
    (models.lenet5, "conv1", [2, 5]),  # conv1 -> pool -> conv2
    (models.lenet5, "fc1", list(range(0, 500, 3))),  # fc1 -> relu -> fc2
    (models.lenet_300_100, "fc2", [1, 2, 99]),
    (small_conv_net, "conv1", [0, 5]),  # conv -> ReLU -> pool -> conv: relu(bias) folded
    (lambda: models.lenet_300_100(dropout=0.5), "fc1", [0, 7, 299]),  # through a Dropout
])
def test_rebuilt_model_computes_what_the_masked_filter_model_computed(build, name, removed):
    minprune.manual_seed(0)
    model = build()
    random_biases(model)
    reference = masked_filters(model, {name: removed})
    report = remove_outputs(model, name, removed)
    before, after = report["outputs"]
    assert after == before - len(removed)
    x = images()  # the LeNets flatten their input themselves
    expected, got = outputs(reference, x), outputs(model, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_lenet5_conv2_removes_its_flattened_blocks_of_fc1():
    minprune.manual_seed(0)
    model = models.lenet5()
    old_fc1 = np.array(model.fc1.weight.data)
    report = remove_outputs(model, "conv2.weight", [1, 4])
    assert report == {"layer": "conv2", "next": "fc1", "removed": [1, 4], "outputs": (50, 48)}
    assert model.conv2.weight.shape == (48, 20, 5, 5) and model.conv2.out_channels == 48
    assert model.fc1.weight.shape == (500, 48 * 16) and model.fc1.in_features == 768
    kept = [c for c in range(50) if c not in (1, 4)]
    columns = np.concatenate([np.arange(c * 16, (c + 1) * 16) for c in kept])
    np.testing.assert_array_equal(model.fc1.weight.data, old_fc1[:, columns])
    assert list(model._modules) == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1",
                                    "relu1", "fc2"]


def test_masks_of_kept_weights_are_kept():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    prune.keep_ratio_prune(model, {"*": 0.3})
    fc1_mask, fc2_mask = np.array(model.fc1.weight_mask), np.array(model.fc2.weight_mask)
    removed = structured.weakest_channels(model.fc1, 0.5)  # ranked on the masked weight
    kept = np.setdiff1d(np.arange(300), removed)
    assert structured.channel_prune(model, {"fc1": 0.5}) == {"fc1": (300, 150)}
    np.testing.assert_array_equal(model.fc1.weight_mask, fc1_mask[kept])
    np.testing.assert_array_equal(model.fc2.weight_mask, fc2_mask[:, kept])
    assert np.all(model.fc1.weight.data[model.fc1.weight_mask == 0] == 0)
    assert structured.parameter_count(model, kept_only=True) == (
        int(fc1_mask[kept].sum() + fc2_mask[:, kept].sum() + model.fc3.weight_mask.sum())
        + 150 + 100 + 10)


def test_channel_prune_default_and_counts():
    minprune.manual_seed(0)
    model = models.lenet5()
    report = structured.channel_prune(model, {"*": 0.5, "conv1": 4})
    assert report == {"conv1": (20, 16), "conv2": (50, 25), "fc1": (500, 250)}
    assert structured.prunable_channels(model) == ["conv1", "conv2", "fc1"]
    assert outputs(model, images()).shape == (4, 10)
    assert structured.parameter_count(model) == (
        16 * 25 + 16 + 25 * 16 * 25 + 25 + 250 * 400 + 250 + 10 * 250 + 10)


def test_sensitivity_rows_leave_the_model_unchanged():
    minprune.manual_seed(0)
    model = small_conv_net()
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    data = (rng.random((20, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 20))
    rows = structured.sensitivity(model, data, [0.0, 0.5])
    assert [(r["layer"], r["fraction"]) for r in rows] == [
        ("conv1", 0.0), ("conv1", 0.5), ("conv2", 0.0), ("conv2", 0.5), ("fc1", 0.0),
        ("fc1", 0.5)]
    assert rows[1]["kept"] == 3 and rows[1]["removed"] == 3
    assert rows[0]["parameters"] > rows[1]["parameters"]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_errors_name_the_layer_and_the_value():
    minprune.manual_seed(0)
    model = models.lenet5()
    with pytest.raises(ValueError, match="'fc2' is the model's output layer"):
        remove_outputs(model, "fc2", [0])
    with pytest.raises(ValueError, match="'conv9' names no Linear or Conv2d"):
        structured.channel_prune(model, {"conv9": 0.5})
    with pytest.raises(ValueError, match=r"'conv1': output indices must be in 0..19, got 3..20"):
        remove_outputs(model, "conv1", [3, 20])
    with pytest.raises(ValueError, match="removing all 20 outputs"):
        remove_outputs(model, "conv1", list(range(20)))
    with pytest.raises(ValueError, match="repeat"):
        remove_outputs(model, "conv1", [1, 1])
    with pytest.raises(ValueError, match=r"fraction to remove must be in \[0, 1\), got 1.0"):
        structured.channel_prune(model, {"conv1": 1.0})
    with pytest.raises(ValueError, match="output layer"):
        structured.sensitivity(model, (images(), np.zeros(4, dtype=np.int64)), [0.5], ["fc2"])
    assert model.conv1.out_channels == 20  # nothing changed


def test_what_cannot_be_rebuilt_is_refused():
    lrn = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 4, 3), norm=nn.LocalResponseNorm(3),
                                    conv2=nn.Conv2d(4, 4, 3)))
    with pytest.raises(ValueError, match="LocalResponseNorm 'norm'"):
        next_weighted_layer(lrn, "conv1")
    padded = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 4, 3), conv2=nn.Conv2d(4, 4, 3,
                                                                                  padding=1)))
    padded.conv1.bias.data[...] = 1.0
    with pytest.raises(ValueError, match="'conv2' pads its input"):
        remove_outputs(padded, "conv1", [0])
    report = remove_outputs(padded, "conv1", [0], fold_constants=False)
    assert report["outputs"] == (4, 3) and padded.conv2.in_channels == 3
    with pytest.raises(ValueError, match="Sequential"):
        structured.channel_prune(nn.Linear(3, 3), {"*": 0.5})
