"""Chapter 2's checks (chapters/checks/ch02.py) pass the solutions and refuse plausible wrong
answers with a hint that names the mistake. A small MLP stands in for LeNet-300-100: three
layers of different sizes, labelled by its own dense predictions (dense error 0)."""

from collections import OrderedDict

import numpy as np
import pytest
from checks import ch02

import minprune as mp
from minprune.nn.layers import Linear, ReLU, Sequential


@pytest.fixture(scope="module")
def small_model():
    """(model, validation): fc1 4,096 weights, fc2 1,024, fc3 64, and 1,000 inputs labelled by
    the dense model itself. A third of every layer gets 470 of them wrong; keeping fc3 whole and
    half of fc2 within the same budget, 400."""
    mp.manual_seed(0)
    model = Sequential(OrderedDict(fc1=Linear(64, 64), relu1=ReLU(), fc2=Linear(64, 16),
                                   relu2=ReLU(), fc3=Linear(16, 4)))
    inputs = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)
    with mp.no_grad():
        labels = model(mp.Tensor(inputs)).data.argmax(axis=1).astype(np.int64)
    return model, mp.data.Dataset(inputs, labels)


# Exercise 1: the mask ---------------------------------------------------------------------------

def right_mask(weights, quality):
    return (np.abs(weights) >= quality * np.std(weights)).astype(np.float32)


def test_exercise_1_passes_the_solution(small_model, capsys):
    ch02.exercise_1(right_mask, small_model[0])
    ch02.exercise_1(lambda w, q: np.abs(w) >= q * w.std())  # a boolean mask is a mask too
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_says_what_to_do():
    def template(weights, quality):
        raise NotImplementedError("Exercise 1: return the 0/1 mask")

    with pytest.raises(NotImplementedError, match="Exercise 1"):
        ch02.exercise_1(template)


@pytest.mark.parametrize(("wrong", "mistake"), [
    (lambda w, q: (np.abs(w) > q * np.std(w)).astype(float), ">="),
    (lambda w, q: (np.abs(w) >= q).astype(float), "not the quality alone"),
    (lambda w, q: (np.abs(w) >= q * np.std(np.abs(w))).astype(float), "magnitudes"),
    (lambda w, q: (np.abs(w) >= q * np.std(w, ddof=1)).astype(float), "ddof"),
    (lambda w, q: (np.abs(w) < q * np.std(w)).astype(float), "other way"),
    (lambda w, q: (w >= q * np.std(w)).astype(float), "negative"),
    (lambda w, q: (np.abs(w) >= q * np.abs(w).mean()).astype(float), "mean magnitude"),
    (lambda w, q: w * (np.abs(w) >= q * np.std(w)), "only 0"),
    (lambda w, q: (np.abs(w) >= q * np.std(w)).ravel(), "shape"),
    (lambda w, q: np.ones_like(w), "your mask is"),
])
def test_exercise_1_rejects_wrong_masks(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch02.exercise_1, wrong)


def test_exercise_1_rejects_a_mask_right_on_the_small_array_only(small_model, fails_with_hint):
    def global_std(weights, quality):   # a fixed std that happens to be the small array's
        return (np.abs(weights) >= quality * 2.0).astype(np.float32)

    assert "threshold_prune" in fails_with_hint(ch02.exercise_1, global_std, small_model[0])


# Exercise 2: density --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pruned(small_model):
    model = mp.copy_model(small_model[0])
    mp.prune.keep_ratio_prune(model, {"fc1.weight": 0.1, "fc2.weight": 0.5, "fc3.weight": 0.9})
    return model


def right_mask_density(mask):
    return np.count_nonzero(mask) / np.size(mask)


def right_model_density(model):
    masks = [layer.weight_mask for layer in mp.prune.layers_by_weight_name(model).values()]
    return sum(np.count_nonzero(mask) for mask in masks) / sum(mask.size for mask in masks)


def test_exercise_2_passes_the_solution(pruned, capsys):
    ch02.exercise_2(right_mask_density, right_model_density, pruned)
    assert "Exercise 2: correct" in capsys.readouterr().out


def test_exercise_2_template_says_what_to_do(pruned):
    def template(mask):
        raise NotImplementedError("Exercise 2: write mask_density")

    with pytest.raises(NotImplementedError, match="Exercise 2"):
        ch02.exercise_2(template, template, pruned)


def _mean_of_layers(model):
    return np.mean([right_mask_density(layer.weight_mask)
                    for layer in mp.prune.layers_by_weight_name(model).values()])


def _with_biases(model):
    layers = mp.prune.layers_by_weight_name(model).values()
    kept = sum(np.count_nonzero(layer.weight_mask) + layer.bias.data.size for layer in layers)
    return kept / sum(layer.weight_mask.size + layer.bias.data.size for layer in layers)


@pytest.mark.parametrize(("mask_density", "model_density", "mistake"), [
    (lambda mask: np.count_nonzero(mask) / len(mask), right_model_density, "rows"),
    (lambda mask: 1 - np.count_nonzero(mask) / np.size(mask), right_model_density, "0.25"),
    (lambda mask: np.count_nonzero(mask), right_model_density, "fraction kept"),
    (right_mask_density, _mean_of_layers, "all layers together"),
    (right_mask_density, lambda model: 1 - right_model_density(model), "fraction pruned"),
    (right_mask_density, _with_biases, "biases"),
    (right_mask_density, lambda model: mp.prune.layer_density(model.fc1), "every layer"),
])
def test_exercise_2_rejects_wrong_densities(pruned, fails_with_hint, mask_density,
                                            model_density, mistake):
    assert mistake in fails_with_hint(ch02.exercise_2, mask_density, model_density, pruned)


# Exercise 3: the quality for a keep ratio -------------------------------------------------------

def right_quality(weights, keep_ratio):
    return np.quantile(np.abs(weights), 1 - keep_ratio) / np.std(weights)


def test_exercise_3_passes_the_solution(small_model, capsys):
    ch02.exercise_3(right_quality, small_model[0])
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_says_what_to_do(small_model):
    with pytest.raises(NotImplementedError, match="Exercise 3"):
        ch02.exercise_3(lambda weights, keep_ratio: None, small_model[0])


@pytest.mark.parametrize(("wrong", "mistake"), [
    (lambda w, r: np.quantile(np.abs(w), r) / np.std(w), "complement"),
    (lambda w, r: np.quantile(np.abs(w), 1 - r), "threshold itself"),
    (lambda w, r: np.quantile(np.abs(w), 1 - r) / np.std(np.abs(w)), "magnitudes"),
    (lambda w, r: np.quantile(w, 1 - r) / np.std(w), "signed"),
    (lambda w, r: 0.7, "reach or exceed"),            # the fc1 value, used for every layer
    (lambda w, r: r / np.std(w), "reach or exceed"),
])
def test_exercise_3_rejects_wrong_qualities(small_model, fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch02.exercise_3, wrong, small_model[0])


# Exercise 4: a third of the weights, spent better ----------------------------------------------

def _budget_ratios(model, fc2, fc3):
    sizes = {name: layer.weight.data.size
             for name, layer in mp.prune.layers_by_weight_name(model).items()}
    fc1 = (sum(sizes.values()) / 3 - fc2 * sizes["fc2.weight"] - fc3 * sizes["fc3.weight"])
    return {"fc1.weight": fc1 / sizes["fc1.weight"], "fc2.weight": fc2, "fc3.weight": fc3}


def test_exercise_4_passes_the_solution(small_model, capsys):
    model, validation = small_model
    ch02.exercise_4(_budget_ratios(model, 0.5, 1.0), model, validation)
    assert "Exercise 4: correct" in capsys.readouterr().out


def test_exercise_4_template_says_what_to_do(small_model):
    with pytest.raises(NotImplementedError, match="Exercise 4"):
        ch02.exercise_4(None, *small_model)


@pytest.mark.parametrize(("wrong", "mistake"), [
    ({"*": 1 / 3}, "not better"),                                  # the baseline itself
    ({"fc1.weight": 1 / 3, "fc2.weight": 1 / 3, "fc3.weight": 1 / 3}, "not better"),
    ({"*": 2 / 3}, "fractions pruned"),                            # pruned, not kept
    ({"fc1.weight": 1 / 3, "fc2.weight": 1 / 3, "fc3.weight": 1.0}, "over the budget"),
    ("fc3", "dict"),
    ({"fc1": 0.3, "fc2": 0.5, "fc3": 1.0}, "refused"),             # names without .weight
    ({"fc1.weight": 0.3, "fc2.weight": 0.5, "fc3.weight": 1.5}, "refused"),
])
def test_exercise_4_rejects_wrong_allocations(small_model, fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch02.exercise_4, wrong, *small_model)


def test_exercise_4_rejects_a_budget_spent_on_the_wrong_layers(small_model, fails_with_hint):
    model, validation = small_model
    harsh_on_the_output = _budget_ratios(model, 0.2, 0.1)
    assert "not better" in fails_with_hint(ch02.exercise_4, harsh_on_the_output, model,
                                           validation)
