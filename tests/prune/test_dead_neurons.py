"""Dead-neuron removal (paper Sec. 3): layers really shrink, outputs stay the same."""

from collections import OrderedDict

import numpy as np
import pytest

import minprune
from minprune import nn, prune
from minprune.autograd import functional as F
from minprune.autograd.tensor import Tensor, no_grad
from minprune.base import random as minprune_random
from minprune.nn import models
from minprune.prune.dead_neurons import dead_neuron_mask, remove_dead_neurons


def outputs(model, x):
    model.eval()
    with no_grad():
        return model(x).data.astype(np.float64)


def assert_same_outputs(before, after):
    scale = np.abs(before).max()
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5 * scale)


def random_biases(model, seed=1):
    """Non-zero biases of both signs, so that folding relu(bias) really matters."""
    rng = np.random.default_rng(seed)
    for layer in prune.layers_by_weight_name(model).values():
        layer.bias.data[...] = rng.normal(size=layer.bias.shape)


def test_heavily_pruned_lenet_300_100_shrinks_and_computes_the_same():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    random_biases(model)
    prune.keep_ratio_prune(model, {"fc1.weight": 0.003, "fc2.weight": 0.02, "fc3.weight": 0.1})
    fc1_no_inputs, _ = dead_neuron_mask(model.fc1, model.fc2)
    assert fc1_no_inputs.any()  # the test needs neurons whose output is a constant
    order = list(model._modules)
    x = np.random.default_rng(0).random((16, 1, 28, 28)).astype(np.float32)
    before = outputs(model, x)

    report = remove_dead_neurons(model)

    assert_same_outputs(before, outputs(model, x))
    assert list(model._modules) == order  # the layers still run in the same order
    assert set(report) == {"fc1", "fc2"}
    assert report["fc1"][0] == 300 and report["fc1"][1] < 300
    assert report["fc2"][0] == 100 and report["fc2"][1] < 100
    assert model.fc1.weight.shape == (report["fc1"][1], 784)
    assert model.fc2.weight.shape == (report["fc2"][1], report["fc1"][1])
    assert model.fc3.weight.shape == (10, report["fc2"][1])
    assert (model.fc1.in_features, model.fc2.in_features) == (784, report["fc1"][1])
    # No dead neuron is left, and each weight still has its mask as the optimiser's link.
    for a, b in ((model.fc1, model.fc2), (model.fc2, model.fc3)):
        no_inputs, no_outputs = dead_neuron_mask(a, b)
        assert not no_outputs.any()
        assert not (no_inputs & (b.bias is not None)).any()
    for layer in prune.layers_by_weight_name(model).values():
        assert layer.weight.mask is layer.weight_mask
        assert np.all(layer.weight.data[layer.weight_mask == 0] == 0)


def test_a_dense_model_is_left_alone():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    layers = [model.fc1, model.fc2, model.fc3]
    assert remove_dead_neurons(model) == {"fc1": (300, 300), "fc2": (100, 100)}
    assert [model.fc1, model.fc2, model.fc3] == layers  # the same objects


def chain(*modules):
    return nn.Sequential(OrderedDict(modules))


def test_removing_a_neuron_can_kill_the_neurons_feeding_it():
    minprune.manual_seed(0)
    model = chain(("a", nn.Linear(3, 4)), ("relu_a", nn.ReLU()), ("b", nn.Linear(4, 3)),
                  ("relu_b", nn.ReLU()), ("c", nn.Linear(3, 2)))
    random_biases(model)
    # c ignores b's neuron 2; only b's neuron 2 reads a's neuron 0.
    prune.set_mask(model.c, [[1, 1, 0], [1, 1, 0]])
    prune.set_mask(model.b, [[0, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    before = outputs(model, x)
    assert remove_dead_neurons(model) == {"a": (4, 3), "b": (3, 2)}
    assert_same_outputs(before, outputs(model, x))


@pytest.mark.parametrize("between", [[], [("relu", nn.ReLU)], [("drop", nn.Dropout)],
                                     [("relu", nn.ReLU), ("drop", nn.Dropout)]])
def test_a_neuron_without_inputs_folds_its_constant_into_the_next_bias(between):
    minprune.manual_seed(0)
    middle = [(name, make()) for name, make in between]
    model = chain(("a", nn.Linear(5, 6)), *middle, ("b", nn.Linear(6, 3)))
    model.a.bias.data[...] = [2.0, -1.5, 0.5, -0.2, 1.0, 3.0]  # positive and negative constants
    mask = np.ones((6, 5))
    mask[[0, 1, 4]] = 0  # neurons 0, 1, 4 have no live inputs
    prune.set_mask(model.a, mask)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    before = outputs(model, x)
    assert remove_dead_neurons(model) == {"a": (6, 3)}
    assert_same_outputs(before, outputs(model, x))
    assert model.b.weight.shape == (3, 3)


def test_lenet5_only_the_fully_connected_chain_shrinks():
    minprune.manual_seed(0)
    model = models.lenet5()
    random_biases(model)
    conv_weights = [model.conv1.weight.data.copy(), model.conv2.weight.data.copy()]
    prune.keep_ratio_prune(model, {"fc1.weight": 0.004, "fc2.weight": 0.1, "*": 1.0})
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    before = outputs(model, x)
    report = remove_dead_neurons(model)
    assert list(report) == ["fc1"] and report["fc1"][1] < 500
    assert model.fc1.in_features == 800  # inputs from the flattened conv2/pool2 stay
    np.testing.assert_array_equal(model.conv1.weight.data, conv_weights[0])
    np.testing.assert_array_equal(model.conv2.weight.data, conv_weights[1])
    assert_same_outputs(before, outputs(model, x))


def test_when_every_neuron_is_dead_one_is_kept():
    minprune.manual_seed(0)
    model = chain(("a", nn.Linear(4, 5)), ("relu", nn.ReLU()), ("b", nn.Linear(5, 2)))
    random_biases(model)
    prune.set_mask(model.a, np.zeros((5, 4)))
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    before = outputs(model, x)
    assert remove_dead_neurons(model) == {"a": (5, 1)}
    assert_same_outputs(before, outputs(model, x))


def test_a_constant_neuron_is_kept_when_the_next_layer_has_no_bias():
    minprune.manual_seed(0)
    model = chain(("a", nn.Linear(4, 3)), ("b", nn.Linear(3, 2, bias=False)))
    model.a.bias.data[...] = [1.0, 0.0, 2.0]
    prune.set_mask(model.a, [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    # Neuron 0 outputs the constant 1 (must stay), neuron 1 outputs 0 (can go).
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    before = outputs(model, x)
    assert remove_dead_neurons(model) == {"a": (3, 2)}
    assert_same_outputs(before, outputs(model, x))


def test_the_shrunk_model_still_trains_and_the_random_generator_is_untouched():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    prune.keep_ratio_prune(model, {"fc1.weight": 0.003, "*": 1.0})
    state = minprune_random.get_rng_state()
    remove_dead_neurons(model)
    assert minprune_random.get_rng_state() == state
    model.train()
    x = Tensor(np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32))
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 3]))
    loss.backward()
    assert model.fc2.weight.grad.shape == model.fc2.weight.shape
    assert np.all(model.fc1.weight.grad[model.fc1.weight_mask == 0] == 0)


def test_a_model_without_sequential_is_refused():
    with pytest.raises(ValueError, match="Sequential"):
        remove_dead_neurons(nn.Linear(3, 2))
