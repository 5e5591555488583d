"""Chapter 7's checks (chapters/checks/ch07.py) pass the reference answers and refuse plausible
wrong ones, each with a hint that names the mistake."""

import numpy as np
import pytest
from checks import ch07

import minprune as mp

# ---- Exercise 1: the weights of a grouped convolution ------------------------------------------

def grouped_conv_weights(in_channels, out_channels, kernel_size, groups):
    return out_channels * (in_channels // groups) * kernel_size * kernel_size


def test_exercise_1_passes_the_reference(capsys):
    ch07.exercise_1(grouped_conv_weights)
    assert "Exercise 1: correct" in capsys.readouterr().out


def test_exercise_1_template_asks_for_an_answer():
    def template(in_channels, out_channels, kernel_size, groups):
        raise NotImplementedError("Exercise 1: return the number of weights")

    with pytest.raises(NotImplementedError):
        ch07.exercise_1(template)


@pytest.mark.parametrize("wrong, mistake", [
    (lambda i, o, k, g: o * i * k * k, "half"),                      # groups ignored
    (lambda i, o, k, g: (o // g) * (i // g) * k * k, "256 filters"),  # filters divided too
    (lambda i, o, k, g: o * (i // g) * k * k + o, "biases"),          # biases counted
    (lambda i, o, k, g: o * (i // g) * k, "square"),                  # one kernel side
    (lambda i, o, k, g: o * i * k * k // 2, "groups=1"),              # always halves
])
def test_exercise_1_refuses_wrong_answers(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch07.exercise_1, wrong)


# ---- Exercise 2: parameters before and after ----------------------------------------------------

def parameters_before_after(model):
    before = sum(parameter.data.size for _, parameter in model.named_parameters())
    layers = mp.prune.layers_by_weight_name(model).values()
    kept = sum(int(np.count_nonzero(layer.weight.data * layer.weight_mask)) for layer in layers)
    biases = sum(layer.bias.data.size for layer in layers if layer.bias is not None)
    return before, kept + biases


@pytest.fixture(scope="module")
def pruned():
    mp.manual_seed(0)
    model = mp.models.lenet_300_100()
    mp.prune.keep_ratio_prune(model, {"fc1.weight": 0.09, "fc2.weight": 0.09,
                                      "fc3.weight": 0.25})
    return model


def _layers(model):
    return mp.prune.layers_by_weight_name(model).values()


def test_exercise_2_passes_the_reference(pruned, capsys):
    ch07.exercise_2(parameters_before_after, pruned)
    assert "Exercise 2: correct" in capsys.readouterr().out


def weights_only_before(model):
    before = sum(layer.weight.data.size for layer in _layers(model))
    return before, parameters_before_after(model)[1]


def no_biases_after(model):
    kept = sum(int(np.count_nonzero(layer.weight_mask)) for layer in _layers(model))
    return parameters_before_after(model)[0], kept


def pruned_counted(model):
    pruned_weights = sum(int(np.sum(layer.weight_mask == 0)) for layer in _layers(model))
    return parameters_before_after(model)[0], pruned_weights


def nothing_pruned(model):
    before = parameters_before_after(model)[0]
    return before, before


def after_only(model):
    return parameters_before_after(model)[1]


@pytest.mark.parametrize("wrong, mistake", [
    (weights_only_before, "biases too"),
    (no_biases_after, "every bias"),
    (pruned_counted, "not what was pruned"),
    (nothing_pruned, "keeps"),
    (after_only, "pair"),
])
def test_exercise_2_refuses_wrong_answers(pruned, fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch07.exercise_2, wrong, pruned)


# ---- Exercise 3: one more cut --------------------------------------------------------------------

TABLE = mp.paper.PAPER_ALEXNET  # Table 4's rows: weights, FLOP and Weights% per layer


def _flop_kept_after(layer):
    rows = [row for row in TABLE if row["layer"] != "total"]
    total = sum(row["flop"] for row in rows)
    kept = sum(row["flop"] * row["weights_kept"] for row in rows)
    cut = next(row["flop"] * row["weights_kept"] / 2 for row in rows if row["layer"] == layer)
    return (kept - cut) / total


def test_exercise_3_passes_the_reference(capsys):
    ch07.exercise_3("fc1", "conv1", _flop_kept_after("conv1"), TABLE)
    ch07.exercise_3("fc1.weight", "conv1.weight", round(_flop_kept_after("conv1"), 3), TABLE)
    assert "Exercise 3: correct" in capsys.readouterr().out


def test_exercise_3_template_asks_for_an_answer():
    with pytest.raises(NotImplementedError):
        ch07.exercise_3(None, None, None, TABLE)


@pytest.mark.parametrize("answer, mistake", [
    (("conv1", "conv1", _flop_kept_after("conv1")), "count what each layer keeps"),
    (("fc1", "fc1", _flop_kept_after("fc1")), "used once per image"),
    (("fc1", "conv2", _flop_kept_after("conv2")), "most FLOP dense"),
    (("fc1", "conv3", _flop_kept_after("conv3")), "another layer removes more"),
    (("fc1", "conv1", 100 * _flop_kept_after("conv1")), "fraction"),
    (("fc1", "conv1", _flop_kept_after("conv2")), "halving conv2"),
    (("fc1", "conv1", 0.4157), "before the cut"),
    (("fc6", "conv1", _flop_kept_after("conv1")), "not a layer"),
])
def test_exercise_3_refuses_wrong_answers(fails_with_hint, answer, mistake):
    assert mistake in fails_with_hint(ch07.exercise_3, *answer, TABLE)


# ---- Exercise 4: an ImageNet epoch ---------------------------------------------------------------

def epoch_hours(step_seconds, batch_size, images=1_281_167):
    steps = -(-images // batch_size)
    return steps * step_seconds / 3600


def test_exercise_4_passes_the_reference(capsys):
    ch07.exercise_4(epoch_hours)
    assert "Exercise 4: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, mistake", [
    (lambda s, b, images=1_281_167: images // b * s / 3600, "partial batch is a step"),
    (lambda s, b, images=1_281_167: images / b * s / 3600, "whole steps"),
    (lambda s, b, images=1_281_167: round(images / b) * s / 3600, "partial batch is a step"),
    (lambda s, b, images=1_281_167: (images // b + 1) * s / 3600, "no partial batch"),
    (lambda s, b, images=1_281_167: images * s / 3600, "whole batch"),
    (lambda s, b, images=1_281_167: -(-images // b) * s, "3,600"),
    (lambda s, b, images=1_281_167: -(-images // b) * s / 60, "minutes"),
])
def test_exercise_4_refuses_wrong_answers(fails_with_hint, wrong, mistake):
    assert mistake in fails_with_hint(ch07.exercise_4, wrong)
